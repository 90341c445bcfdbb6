//! Runs `da_bench` as `zero-producer da-bench` will, with the same allocator (mimalloc).
//!
//! `cargo run --release -p zero-prover-bridge --example da_bench -- PROFILE SIZE N K [THREADS] [REPEATS]`
//! prints one JSON line per run.

use zero_prover_bridge::svid::{da_bench, Profile};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err("usage: da_bench PROFILE SIZE N K [THREADS] [REPEATS]".into());
    }
    let profile: Profile = args[0].parse()?;
    let (size, n, k): (usize, usize, usize) =
        (args[1].parse()?, args[2].parse()?, args[3].parse()?);
    let threads = args.get(4).map(|t| t.parse()).transpose()?.filter(|&t: &usize| t > 0);
    let repeats: usize = args.get(5).map(|r| r.parse()).transpose()?.unwrap_or(1);
    if profile == Profile::SemiAvid {
        let start = std::time::Instant::now();
        let rows = zero_prover_bridge::svid::semi_avid::rows_for(size as u64, k) as usize;
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.unwrap_or(0)).build()?;
        pool.install(|| zero_prover_bridge::svid::semi_avid::setup::setup(rows));
        eprintln!("semi-avid setup for {rows} rows: {:.3} s", start.elapsed().as_secs_f64());
    }
    for _ in 0..repeats {
        let report = da_bench(profile, size, n, k, threads)?;
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}
