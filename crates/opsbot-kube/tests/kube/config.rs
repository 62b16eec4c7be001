//! The `[[providers]]` section: every bad key is named, secrets stay out of Debug.

use crate::harness::settings;
use opsbot_core::ProviderSection;
use opsbot_kube::Config;

fn parse(text: &str) -> Result<Config, String> {
    toml::from_str::<Config>(text).map_err(|e| e.to_string())
}

/// The key `validate` names for `text`.
fn bad_key(text: &str) -> String {
    parse(text).unwrap().validate().unwrap_err().key
}

#[test]
fn every_bad_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let f = file.display();
    let cases = [
        ("", "kubeconfig"),
        ("kubeconfig = \"/nonexistent/kubeconfig\"", "kubeconfig"),
        (&format!("kubeconfig = \"{f}\"\nurl = \"https://h:6443\""), "url"),
        (&format!("kubeconfig = \"{f}\"\nin_cluster = true"), "in_cluster"),
        ("context = \"c\"\nin_cluster = true", "context"),
        ("url = \"https://h:6443\"", "token"),
        ("url = \"ftp://h\"\ntoken = \"t\"", "url"),
        ("url = \"https://h:6443\"\ntoken = \"t\"", "ca_file"),
        (&format!("url = \"https://h:6443\"\ntoken = \"t\"\ntoken_file = \"{f}\"\ninsecure = true"), "token_file"),
        ("url = \"https://h:6443\"\ntoken = \"t\"\nca_file = \"/nope.pem\"", "ca_file"),
        (&format!("url = \"https://h:6443\"\ntoken = \"t\"\nca_file = \"{f}\"\ninsecure = true"), "insecure"),
        ("in_cluster = true\ntoken = \"t\"", "token"),
        ("in_cluster = true\nnamespaces = [\"Payments\"]", "namespaces[0]"),
        ("in_cluster = true\nmax_replicas = -1", "max_replicas"),
        ("in_cluster = true\n[[scale_limits]]\nscope = \"a/[\"\nmax_replicas = 3", "scale_limits[0].scope"),
        ("in_cluster = true\n[[scale_limits]]\nscope = \"a/*\"\nmax_replicas = -3", "scale_limits[0].max_replicas"),
        ("in_cluster = true\nrollout_timeout = \"soon\"", "rollout_timeout"),
        ("in_cluster = true\nlog_lines = 501", "log_lines"),
        ("in_cluster = true\nlog_lines = 0", "log_lines"),
        ("in_cluster = true\nlog_bytes = 10", "log_bytes"),
        ("in_cluster = true\n[[clusters]]\nname = \"a\"\nin_cluster = true", "clusters"),
        ("[[clusters]]\nname = \"a\"\nin_cluster = true\n[[clusters]]\nname = \"b\"\nurl = \"http://h\"", "clusters[1].token"),
        ("[[clusters]]\nname = \"a\"\nin_cluster = true\n[[clusters]]\nname = \"a\"\nin_cluster = true", "clusters[1].name"),
        ("cluster = \"a/b\"\nin_cluster = true", "cluster"),
    ];
    for (text, key) in cases {
        assert_eq!(bad_key(text), key, "for {text:?}");
    }
    // Keys the section does not have are refused when read, by name.
    let e = parse("in_cluster = true\nreplicas_max = 3").unwrap_err();
    assert!(e.contains("replicas_max"), "{e}");
    let e = parse("[[clusters]]\nname = \"a\"\nkubecfg = \"x\"").unwrap_err();
    assert!(e.contains("kubecfg"), "{e}");
}

#[test]
fn good_sections_pass_and_list_their_clusters() {
    let c = parse("in_cluster = true").unwrap();
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(c.cluster_list()[0].name, "default");
    assert_eq!(c.default_sync_period(), None);
    let c = parse(
        "namespaces = [\"payments\"]\n[[clusters]]\nname = \"a\"\nin_cluster = true\n\
         [[clusters]]\nname = \"b\"\nurl = \"http://10.0.0.1:8080\"\ntoken = \"t\"",
    )
    .unwrap();
    assert_eq!(c.validate(), Ok(()));
    let names: Vec<String> = c.cluster_list().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn debug_hides_tokens() {
    let c = parse("url = \"http://h\"\ntoken = \"s3cr3t-token\"\n[[clusters]]\nname = \"b\"\nurl = \"http://h\"\ntoken = \"other-s3cr3t\"").unwrap();
    let text = format!("{c:?}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains("<hidden>"), "{text}");
}

#[test]
fn defaults_and_scale_limits_first_match_wins() {
    let s = settings("");
    assert_eq!(s.max_replicas, 50);
    assert_eq!(s.rollout_timeout.as_secs(), 300);
    assert_eq!((s.log_lines, s.log_bytes), (50, 4000));
    let s = settings(
        "max_replicas = 20\n[[scale_limits]]\nscope = \"prod/payments/*\"\nmax_replicas = 4\n\
         [[scale_limits]]\nscope = \"prod/*\"\nmax_replicas = 8",
    );
    assert_eq!(s.max_replicas_at("prod/payments/api"), 4);
    assert_eq!(s.max_replicas_at("prod/web/web"), 8);
    assert_eq!(s.max_replicas_at("staging/web/web"), 20);
}
