//! `zero-prover-bridge`: the hand-off of each committed block to proving and data availability.
//!
//! Planned (ARCHITECTURE §7), not yet built: the versioned `BlockWitness`, stateless validation
//! (`validate_block`, the prover's guest logic), the spool-directory hand-off to a prover backend,
//! and SVID encoding (the `fast` Reed-Solomon + Merkle profile and the `semi-avid` profile).
//! The crate exists so the workspace has its final shape; it exports nothing yet.
