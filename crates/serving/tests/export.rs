//! `export_triton` and `Repository::open` on a real deployed work dir (tract, the small CNN of
//! the test data with a variable batch dim).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test: a panic is a failure with its message"
)]

use rdeploy_serving::model_config::{self, CONFIG_FILE};
use rdeploy_serving::{ExportOptions, Platform, Repository, export_triton};
use std::path::{Path, PathBuf};

fn small_cnn() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/small-cnn.onnx")
}

fn deploy(dir: &Path) -> PathBuf {
    let registry = rdeploy::builtin_registry();
    let cfg = rdeploy::Config::from_json(
        &serde_json::json!({"backend_config": {"type": "tract"}}),
        Path::new("<test>"),
    )
    .expect("config");
    let wd_path = dir.join("cnn-tract");
    rdeploy::deploy(
        &registry,
        &cfg,
        &small_cnn(),
        &wd_path,
        &rdeploy::Device::cpu(),
        &rdeploy::DeployOptions::default(),
    )
    .expect("deploy");
    wd_path
}

#[test]
fn export_writes_a_config_triton_reads_and_a_verified_version() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wd = deploy(tmp.path());
    let repo = tmp.path().join("repo");
    let opts = ExportOptions {
        name: Some("cnn".into()),
        max_batch_size: 8,
        instances: 2,
        dynamic_batching: true,
        max_queue_delay_us: 500,
        ..Default::default()
    };
    let out = export_triton(&wd, &repo, &opts).expect("export");
    assert_eq!(out.version_dir, repo.join("cnn/1"));
    let cfg = model_config::read(&repo.join("cnn")).expect("config.pbtxt parses");
    assert_eq!(cfg, out.config);
    assert_eq!(cfg.backend, "rdeploy");
    assert_eq!(cfg.max_batch_size, 8);
    // The batch dim is left out of dims when the model batches.
    let manifest = rdeploy::WorkDir::open(&wd).expect("wd").manifest;
    let rank = manifest.inputs[0].shape.as_ref().expect("shape").len();
    assert_eq!(cfg.input[0].dims.len(), rank - 1);
    let text = std::fs::read_to_string(repo.join("cnn").join(CONFIG_FILE)).expect("read");
    assert!(
        text.contains("TYPE_FP32") && text.contains("KIND_CPU"),
        "{text}"
    );
    assert!(text.contains("max_queue_delay_microseconds: 500"), "{text}");

    // The repository reads back with the same settings and the version folder verifies.
    let r = Repository::open(&repo, &ExportOptions::default()).expect("open");
    assert_eq!(r.models.len(), 1);
    let m = &r.models[0];
    assert_eq!(
        (
            m.name.as_str(),
            m.settings.max_batch_size,
            m.settings.instances
        ),
        ("cnn", 8, 2)
    );
    assert_eq!(m.versions, vec![(1, repo.join("cnn/1"))]);
    rdeploy::WorkDir::open(&m.versions[0].1)
        .expect("work dir")
        .verify()
        .expect("verified");

    // The same export again is a no-op; other settings for the same version are refused
    // without --force, taken with it.
    export_triton(&wd, &repo, &opts).expect("identical export again");
    let other = ExportOptions {
        instances: 3,
        ..opts.clone()
    };
    let e = export_triton(&wd, &repo, &other).unwrap_err().to_string();
    assert!(e.contains("--force"), "{e}");
    export_triton(
        &wd,
        &repo,
        &ExportOptions {
            force: true,
            ..opts.clone()
        },
    )
    .expect("forced");
    // Version 2 under the same config: served by the default policy (latest).
    export_triton(
        &wd,
        &repo,
        &ExportOptions {
            version: 2,
            ..opts.clone()
        },
    )
    .expect("v2");
    let r = Repository::open(&repo, &ExportOptions::default()).expect("open");
    assert_eq!(r.models[0].versions, vec![(2, repo.join("cnn/2"))]);
    // No staging folders are left behind.
    let left: Vec<_> = std::fs::read_dir(repo.join("cnn"))
        .expect("read")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn options_that_do_not_fit_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wd = deploy(tmp.path());
    let repo = tmp.path().join("repo");
    let cases: [(ExportOptions, &str); 4] = [
        (
            ExportOptions {
                platform: Platform::Native,
                ..Default::default()
            },
            "Triton has no backend of its own for 'tract'",
        ),
        (
            ExportOptions {
                dynamic_batching: true,
                ..Default::default()
            },
            "--max-batch-size",
        ),
        (
            ExportOptions {
                name: Some("../x".into()),
                ..Default::default()
            },
            "model name",
        ),
        (
            ExportOptions {
                version: 0,
                ..Default::default()
            },
            "positive",
        ),
    ];
    for (opts, want) in cases {
        let e = export_triton(&wd, &repo, &opts).unwrap_err().to_string();
        assert!(e.contains(want), "{e} should say {want}");
    }
    assert!(!repo.join("x").exists() && !tmp.path().join("x").exists());
    // A bare work dir serves as a repository of one model named after its folder.
    let r = Repository::open(&wd, &ExportOptions::default()).expect("open");
    assert_eq!(r.models[0].name, "cnn-tract");
    // A config with an error names the file and line.
    std::fs::create_dir_all(repo.join("m/1")).expect("mkdir");
    std::fs::write(
        repo.join("m").join(CONFIG_FILE),
        "name: \"m\"\nmax_batch_size: x\n",
    )
    .expect("write");
    let e = Repository::open(&repo, &ExportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("config.pbtxt:2:"), "{e}");
}

#[test]
fn a_repo_inside_the_work_dir_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wd = deploy(tmp.path());
    let before: Vec<_> = std::fs::read_dir(&wd)
        .expect("read")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    for repo in [wd.clone(), wd.join("sub")] {
        let e = export_triton(&wd, &repo, &ExportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("inside the work dir"), "{e}");
    }
    // Replacing the very version folder the work dir is: refused too.
    let repo = tmp.path().join("repo");
    export_triton(
        &wd,
        &repo,
        &ExportOptions {
            name: Some("m".into()),
            ..Default::default()
        },
    )
    .expect("export");
    let e = export_triton(
        &repo.join("m/1"),
        &repo,
        &ExportOptions {
            name: Some("m".into()),
            force: true,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("inside the work dir") || e.contains("replace it"),
        "{e}"
    );
    rdeploy::WorkDir::open(repo.join("m/1"))
        .expect("still there")
        .verify()
        .expect("intact");
    let after: Vec<_> = std::fs::read_dir(&wd)
        .expect("read")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    let extra: Vec<_> = after.iter().filter(|n| !before.contains(n)).collect();
    // The refused exports created at most the empty model folders, no copies.
    for n in extra {
        let p = wd.join(n);
        let inner: Vec<_> = std::fs::read_dir(&p)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            inner.iter().all(|q| std::fs::read_dir(q)
                .map(|mut r| r.next().is_none())
                .unwrap_or(true)),
            "{inner:?}"
        );
    }
}

#[test]
fn a_repository_config_is_checked_against_its_work_dir_and_native_entries_are_skipped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wd = deploy(tmp.path());
    let repo = tmp.path().join("repo");
    export_triton(
        &wd,
        &repo,
        &ExportOptions {
            name: Some("m".into()),
            max_batch_size: 4,
            ..Default::default()
        },
    )
    .expect("export");
    let cfg = repo.join("m").join(CONFIG_FILE);
    let text = std::fs::read_to_string(&cfg).expect("read");
    // A wrong dim is named with both shapes.
    let manifest = rdeploy::WorkDir::open(&wd).expect("wd").manifest;
    let last = manifest.inputs[0]
        .shape
        .as_ref()
        .expect("shape")
        .last()
        .expect("dim")
        .fixed()
        .expect("fixed");
    std::fs::write(
        &cfg,
        text.replacen(&format!("{last}]"), &format!("{}]", last + 1), 1),
    )
    .expect("write");
    let e = Repository::open(&repo, &ExportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("does not fit version folder") && e.contains("has dims"),
        "{e}"
    );
    // A config listing no tensors takes the model's (Triton's auto-complete).
    std::fs::write(&cfg, "name: \"m\"\nmax_batch_size: 4\n").expect("write");
    let r = Repository::open(&repo, &ExportOptions::default()).expect("auto-complete");
    assert_eq!(r.models[0].settings.inputs.len(), manifest.inputs.len());
    // An entry for Triton's own backend beside it is skipped, not fatal.
    std::fs::create_dir_all(repo.join("native/1")).expect("mkdir");
    std::fs::write(
        repo.join("native").join(CONFIG_FILE),
        "name: \"native\"\nplatform: \"onnxruntime_onnx\"\n",
    )
    .expect("write");
    let r = Repository::open(&repo, &ExportOptions::default()).expect("open");
    assert_eq!(
        r.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["m"]
    );
}
