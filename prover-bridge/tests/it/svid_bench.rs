//! `da-bench` reports.

use zero_prover_bridge::svid::{da_bench, Profile, SvidError};

#[test]
fn reports_carry_the_documented_fields() {
    for (profile, size) in [(Profile::Fast, 200_000), (Profile::SemiAvid, 20_000)] {
        let report = da_bench(profile, size, 16, 5, Some(1)).unwrap();
        assert_eq!(
            (report.profile, report.size, report.n, report.k),
            (profile, size as u64, 16, 5)
        );
        assert!(report.encode_gb_per_s > 0.0 && report.reconstruct_gb_per_s > 0.0);
        assert!(report.verify_chunk_us > 0.0);
        assert!(
            (1..=zero_prover_bridge::svid::bench::MAX_ENCODE_RUNS).contains(&report.encode_runs)
        );
        assert!(report.expansion > 16.0 / 5.0);
        let json = serde_json::to_value(&report).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "encode_gb_per_s",
                "encode_runs",
                "expansion",
                "k",
                "n",
                "profile",
                "reconstruct_gb_per_s",
                "size",
                "verify_chunk_us"
            ]
        );
        assert_eq!(json["profile"], profile.name());
    }
    assert!(matches!(da_bench(Profile::Fast, 0, 4, 2, None), Err(SvidError::EmptyBlock)));
    assert!(matches!(
        da_bench(Profile::Fast, 10, 4, 4, None),
        Err(SvidError::InvalidThreshold { .. })
    ));
}
