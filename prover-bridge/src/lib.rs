//! `zero-prover-bridge`: the hand-off of each committed block to proving and data availability.
//!
//! Built: [`svid`], data-availability encoding of a block body into `n` chunks with one
//! commitment, any `k` of which rebuild the block, in two profiles (`fast`: GF(2^16)
//! Reed-Solomon + BLAKE3 Merkle; `semi-avid`: Semi-AVID-PR over BLS12-381).
//!
//! Planned (ARCHITECTURE §7), not yet built: the versioned `BlockWitness`, stateless validation
//! (`validate_block`, the prover's guest logic), and the spool-directory hand-off to a prover
//! backend.

pub mod svid;
