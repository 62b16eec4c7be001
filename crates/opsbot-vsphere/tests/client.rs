//! The SOAP client against vcsim: session, re-login, login/transport/TLS errors, faults.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use opsbot_vsphere::client::{ClientConfig, MoRef, VimClient};
use opsbot_vsphere::error::Error;
use std::time::Duration;

/// The VMs' MoRefs via a container view, through the client.
async fn vm_ids(client: &VimClient) -> Vec<MoRef> {
    let inv = opsbot_vsphere::inventory::fetch(client, "t").await.unwrap();
    inv.vms
        .iter()
        .map(|v| MoRef::new("VirtualMachine", v.id.clone()))
        .collect()
}

#[tokio::test]
async fn connect_reads_service_content_and_logs_in() {
    let Some(sim) = common::vcsim(&[]) else {
        return;
    };
    let client = VimClient::connect(sim.config()).await.unwrap();
    let svc = client.service();
    assert_eq!(svc.api_version, "6.5");
    assert_eq!(svc.root_folder.kind, "Folder");
    assert_eq!(svc.property_collector.kind, "PropertyCollector");
    assert!(svc.customization_spec_manager.is_some());
    assert!(client.session_cookie().is_some());
    let props = client
        .retrieve(&svc.session_manager, &["currentSession"])
        .await
        .unwrap();
    assert_eq!(
        props["currentSession"].text_at("userName"),
        Some("user"),
        "{props:?}"
    );
    client.logout().await.unwrap();
}

#[tokio::test]
async fn expired_session_logs_in_again_transparently() {
    let Some(sim) = common::vcsim_and_reader(&[]) else {
        return;
    };
    let client = VimClient::connect(sim.config()).await.unwrap();
    let old = client.session_cookie().unwrap();
    // Log the session out from outside (another client, not the code under test).
    let out = sim.read(&["logout", &old]);
    assert_eq!(out["status"], 200);
    // A method call (SOAP fault NotAuthenticated) still works...
    let vms = vm_ids(&client).await;
    assert_eq!(vms.len(), 4);
    let new = client.session_cookie().unwrap();
    assert_ne!(old, new);
    // ...and so does a property read (vcsim answers those with missingSet faults).
    sim.read(&["logout", &new]);
    let props = client.retrieve(&vms[0], &["name"]).await.unwrap();
    assert!(props.contains_key("name"));
    assert_ne!(client.session_cookie().unwrap(), new);
    // A garbage cookie is the same as an expired one.
    client.set_session_cookie(Some("not-a-session".into()));
    let props = client.retrieve(&vms[0], &["name"]).await.unwrap();
    assert!(props.contains_key("name"));
}

#[tokio::test]
async fn refused_login_is_a_login_error_with_a_clear_message() {
    let Some(sim) = common::vcsim(&[]) else {
        return;
    };
    // vcsim accepts any non-empty user/password; an empty password is refused.
    let mut cfg = sim.config();
    cfg.username = "ops".into();
    cfg.password = String::new();
    let err = VimClient::connect(cfg).await.unwrap_err();
    match &err {
        Error::Login { url, user, message } => {
            assert_eq!(url, &sim.url);
            assert_eq!(user, "ops");
            assert!(message.contains("InvalidLogin"), "{message}");
        }
        other => panic!("expected Login, got {other:?}"),
    }
    assert!(
        err.to_string().starts_with(&format!(
            "vCenter {} refused login for user ops: InvalidLogin",
            sim.url
        )),
        "{err}"
    );
}

#[tokio::test]
async fn password_never_appears_in_errors() {
    let mut cfg = ClientConfig::new("http://ops:hunter2@127.0.0.1:1/sdk", "ops", "hunter2");
    cfg.timeout = Duration::from_secs(5);
    let err = VimClient::connect(cfg).await.unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

#[tokio::test]
async fn unreachable_url_is_unreachable() {
    let url = common::closed_url();
    let mut cfg = ClientConfig::new(url.clone(), "user", "pass");
    cfg.timeout = Duration::from_secs(5);
    let err = VimClient::connect(cfg).await.unwrap_err();
    match &err {
        Error::Unreachable { url: u, .. } => assert_eq!(u, &url),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with(&format!("vCenter {url} is unreachable")),
        "{err}"
    );
}

#[tokio::test]
async fn silent_server_is_a_timeout() {
    // Accepts TCP but never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sdk", listener.local_addr().unwrap());
    let mut cfg = ClientConfig::new(url.clone(), "user", "pass");
    cfg.timeout = Duration::from_secs(1);
    let err = VimClient::connect(cfg).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    drop(listener);
}

#[tokio::test]
async fn tls_with_insecure_tls_works() {
    let Some(sim) = common::vcsim(&["-tls"]) else {
        return;
    };
    assert!(sim.url.starts_with("https://"), "{}", sim.url);
    let mut cfg = sim.config();
    cfg.insecure_tls = true;
    let client = VimClient::connect(cfg).await.unwrap();
    let inv = opsbot_vsphere::inventory::fetch(&client, "t")
        .await
        .unwrap();
    assert_eq!(inv.vms.len(), 4);
}

#[tokio::test]
async fn tls_self_signed_without_insecure_is_a_clear_tls_error() {
    let Some(sim) = common::vcsim(&["-tls"]) else {
        return;
    };
    let mut cfg = sim.config();
    cfg.insecure_tls = false;
    let err = VimClient::connect(cfg).await.unwrap_err();
    match &err {
        Error::Tls(message) => {
            assert!(message.contains(&sim.url), "{message}");
            assert!(message.contains("insecure_tls"), "{message}");
        }
        other => panic!("expected Tls, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_ca_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate").unwrap();
    let mut cfg = ClientConfig::new("https://127.0.0.1:1/sdk", "user", "pass");
    cfg.ca_file = Some(path);
    let err = VimClient::connect(cfg).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[tokio::test]
async fn task_error_becomes_a_typed_fault() {
    let Some(sim) = common::vcsim(&[]) else {
        return;
    };
    let client = VimClient::connect(sim.config()).await.unwrap();
    let vm = vm_ids(&client).await.remove(0);
    // Power off (succeeds), then power off again: Task error InvalidPowerState.
    let mut seen = Vec::new();
    let answer = client.invoke("PowerOffVM_Task", &vm, "").await.unwrap();
    let task = answer.child("returnval").unwrap().moref().unwrap();
    assert_eq!(task.kind, "Task");
    client
        .wait_task(&task, &mut |p| seen.push(p))
        .await
        .unwrap();
    assert_eq!(seen.last(), Some(&100));
    let answer = client.invoke("PowerOffVM_Task", &vm, "").await.unwrap();
    let task = answer.child("returnval").unwrap().moref().unwrap();
    let err = client.wait_task(&task, &mut |_| {}).await.unwrap_err();
    match &err {
        Error::Fault { kind, message } => {
            assert_eq!(kind, "InvalidPowerState");
            assert!(message.contains("existingState=poweredOff"), "{message}");
            assert!(!message.contains("*types"), "{message}");
        }
        other => panic!("expected Fault, got {other:?}"),
    }
}

#[tokio::test]
async fn soap_faults_are_typed() {
    let Some(sim) = common::vcsim(&[]) else {
        return;
    };
    let client = VimClient::connect(sim.config()).await.unwrap();
    let vm = vm_ids(&client).await.remove(0);
    // ShutdownGuest on an off VM is a synchronous fault.
    let answer = client.invoke("PowerOffVM_Task", &vm, "").await.unwrap();
    let task = answer.child("returnval").unwrap().moref().unwrap();
    client.wait_task(&task, &mut |_| {}).await.unwrap();
    let err = client.invoke("ShutdownGuest", &vm, "").await.unwrap_err();
    assert_eq!(err.fault_kind(), Some("InvalidPowerState"), "{err:?}");
    // An unknown MoRef.
    let ghost = MoRef::new("VirtualMachine", "vm-999999");
    let err = client
        .invoke("PowerOnVM_Task", &ghost, "")
        .await
        .unwrap_err();
    assert_eq!(err.fault_kind(), Some("ManagedObjectNotFound"), "{err:?}");
    assert!(err.to_string().contains("vm-999999"), "{err}");
    // A method vcsim lacks.
    let err = client.invoke("RebootGuest", &vm, "").await.unwrap_err();
    assert_eq!(err.fault_kind(), Some("MethodNotFound"), "{err:?}");
    // A successful task returns its result (CloneVM_Task → the new VM).
    let dc_folder = client.retrieve(&vm, &["parent"]).await.unwrap()["parent"]
        .moref()
        .unwrap();
    let answer = client
        .invoke(
            "CloneVM_Task",
            &vm,
            &format!(
                "{}<name>clone-a&amp;b</name><spec><location></location><template>false</template><powerOn>false</powerOn></spec>",
                dc_folder.to_xml("folder")
            ),
        )
        .await
        .unwrap();
    let task = answer.child("returnval").unwrap().moref().unwrap();
    let result = client.wait_task(&task, &mut |_| {}).await.unwrap().unwrap();
    let new_vm = result.moref().unwrap();
    assert_eq!(new_vm.kind, "VirtualMachine");
    let mapped = opsbot_vsphere::inventory::vm(&client, "t", &new_vm)
        .await
        .unwrap();
    assert_eq!(mapped.name, "clone-a&b");
}

/// vcsim's self-signed certificate is itself a CA (CA:TRUE), which webpki refuses as a
/// server certificate even when trusted, so `ca_file` is shown against a small HTTPS
/// server (Python) with a CA-signed leaf made by openssl: without the CA the handshake is
/// refused (UnknownIssuer); with it the handshake passes and the non-SOAP answer is a
/// protocol error.
#[tokio::test]
async fn tls_ca_file_is_trusted() {
    use opsbot_testkit::{fix, program};
    if program("openssl", fix::OPENSSL).is_none() || program("python3", fix::PYTHON3).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let make = format!(
        "set -e; cd {d}
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=opsbot-test-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile ext 2>/dev/null"
    );
    let made = std::process::Command::new("bash")
        .arg("-c")
        .arg(&make)
        .status()
        .expect("run bash");
    assert!(
        made.success(),
        "openssl could not make the test certificates"
    );
    let server = format!(
        "import http.server, ssl
srv = http.server.HTTPServer(('127.0.0.1', 0), http.server.BaseHTTPRequestHandler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain('{d}/leaf.pem', '{d}/leaf.key')
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()"
    );
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(server)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{}/sdk", line.trim());
    let mut cfg = ClientConfig::new(url, "user", "pass");
    cfg.timeout = Duration::from_secs(10);
    let without = VimClient::connect(cfg.clone()).await.unwrap_err();
    cfg.ca_file = Some(dir.path().join("ca.pem"));
    let with = VimClient::connect(cfg).await.unwrap_err();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        matches!(&without, Error::Tls(m) if m.contains("UnknownIssuer")),
        "{without:?}"
    );
    assert!(matches!(with, Error::Protocol(_)), "{with:?}");
}
