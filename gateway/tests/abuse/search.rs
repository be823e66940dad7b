//! Searches and listings cost what the page needs, not what the store
//! holds: with 20,000 packages, each search reads the catalog's word index
//! (before, each scanned every package: 0.23–0.29 s per search at 8,000
//! packages, and an address may ask 100 a second).

use std::time::Duration;

use ipsr_node::search;
use serde_json::Value;

use crate::{Gateway, procs};

const PACKAGES: usize = 20_000;
/// Requests per route measured.
const REQUESTS: u32 = 20;
/// The gateway CPU a request may use, at most (debug build). A scan of
/// 20,000 packages took about 2 s per search in the debug build.
const CPU_PER_REQUEST_SECS: f64 = 0.1;

fn get_json(agent: &ureq::Agent, url: &str) -> Value {
    let mut response = agent.get(url).call().unwrap();
    assert_eq!(response.status(), 200, "{url}");
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}

#[test]
fn searches_read_the_index_not_every_package() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gateway");
    procs::fill_store(&data, PACKAGES);
    // What a read of every package ranks first, from the store before the
    // gateway holds it.
    let expected: Vec<String> = {
        let store = ipsr_node::Store::open(&data.join("store.redb")).unwrap();
        search::scan(&store, "camera notes", 30)
            .unwrap()
            .into_iter()
            .map(|h| h.package.to_string())
            .collect()
    };
    assert_eq!(expected.len(), 30, "one package in 100 has both words");

    // Without the view cache: an attacker varies the query anyway.
    let mut gw = Gateway::start(dir.path(), &["--rate-limit", "0", "--view-cache-ms", "0"]);
    let agent = ipsr_testkit::agent_with_timeout(Duration::from_secs(60));
    let http = gw.http.clone();
    let names = |page: &Value| -> Vec<String> {
        page["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    p["author"].as_str().unwrap(),
                    p["package"].as_str().unwrap()
                )
            })
            .collect()
    };

    // The answers are a full read's, page after page.
    let first = get_json(
        &agent,
        &format!("{http}/api/v1/packages?q=camera+notes&limit=20"),
    );
    assert_eq!(names(&first), expected[..20]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = get_json(
        &agent,
        &format!("{http}/api/v1/packages?q=camera+notes&limit=10&cursor={cursor}"),
    );
    assert_eq!(names(&second), expected[20..30]);

    let routes = [
        "/?q=camera".to_owned(),
        "/api/v1/packages?q=notes".to_owned(),
        "/api/v1/packages?q=cam".to_owned(),
        "/".to_owned(),
        "/api/v1/packages?cursor=980&limit=19".to_owned(),
    ];
    for route in routes {
        let url = format!("{http}{route}");
        let before = gw.cpu_secs();
        for _ in 0..REQUESTS {
            let response = agent.get(&url).call().unwrap();
            assert_eq!(response.status(), 200, "{route}");
        }
        let per_request = (gw.cpu_secs() - before) / f64::from(REQUESTS);
        println!(
            "{route}: {:.1} ms of gateway CPU per request",
            per_request * 1000.0
        );
        assert!(
            per_request < CPU_PER_REQUEST_SECS,
            "{route} used {per_request:.3} s of CPU per request with {PACKAGES} packages"
        );
    }
}
