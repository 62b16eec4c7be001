//! Cancelling a running vCenter task. vcsim (govmomi 0.24) runs its tasks to the end
//! before returning them and does not implement CancelTask, so `tests/ops.rs` can only
//! show the call reaching a finished task. Here a minimal vim25 endpoint keeps one
//! task running until it is cancelled, as vCenter does with a clone's copy: the client
//! sends `CancelTask` to that task's MoRef once the job asks, and the task's
//! `RequestCanceled` end is what the provider turns into a cancelled job; when vCenter
//! refuses, the refusal is reported and the task runs to its end.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_core::Cancel;
use opsbot_vsphere::client::{ClientConfig, MoRef, VimClient};
use opsbot_vsphere::error::Error;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake vCenter does with `CancelTask`.
#[derive(Clone, Copy, PartialEq)]
enum OnCancel {
    /// The task ends in error `RequestCanceled`.
    Honour,
    /// A fault (`InvalidState`), and the task then succeeds.
    Refuse,
}

struct Fake {
    on_cancel: OnCancel,
    /// The `_this` of every CancelTask received.
    cancelled: Mutex<Vec<String>>,
}

fn envelope(body: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" "#,
            r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            "<soapenv:Body>{}</soapenv:Body></soapenv:Envelope>"
        ),
        body
    )
}

fn task_props(task: &str, props: &str) -> String {
    format!(
        concat!(
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects>"#,
            r#"<obj type="Task">{}</obj>{}</objects></returnval></RetrievePropertiesExResponse>"#
        ),
        task, props
    )
}

fn prop(name: &str, val: &str) -> String {
    format!("<propSet><name>{name}</name>{val}</propSet>")
}

impl Fake {
    /// (HTTP status, extra header, SOAP body) for one request body.
    fn answer(&self, body: &str) -> (u16, &'static str, String) {
        let this = body
            .split("<_this")
            .nth(1)
            .and_then(|s| s.split('>').nth(1))
            .and_then(|s| s.split('<').next())
            .unwrap_or_default()
            .to_string();
        if body.contains("<RetrieveServiceContent") {
            return (
                200,
                "",
                concat!(
                    r#"<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval>"#,
                    r#"<rootFolder type="Folder">group-d1</rootFolder>"#,
                    r#"<propertyCollector type="PropertyCollector">propertyCollector</propertyCollector>"#,
                    r#"<viewManager type="ViewManager">ViewManager</viewManager>"#,
                    r#"<about><fullName>fake vCenter</fullName><apiVersion>6.5</apiVersion><apiType>VirtualCenter</apiType></about>"#,
                    r#"<sessionManager type="SessionManager">SessionManager</sessionManager>"#,
                    "</returnval></RetrieveServiceContentResponse>"
                )
                .to_string(),
            );
        }
        if body.contains("<Login") {
            return (
                200,
                "Set-Cookie: vmware_soap_session=\"fake-session\"; Path=/; HttpOnly\r\n",
                r#"<LoginResponse xmlns="urn:vim25"><returnval><key>s1</key><userName>u</userName></returnval></LoginResponse>"#
                    .to_string(),
            );
        }
        if body.contains("<CancelTask") {
            self.cancelled.lock().unwrap().push(this);
            return match self.on_cancel {
                OnCancel::Honour => (
                    200,
                    "",
                    r#"<CancelTaskResponse xmlns="urn:vim25"></CancelTaskResponse>"#.to_string(),
                ),
                OnCancel::Refuse => (
                    500,
                    "",
                    concat!(
                        "<soapenv:Fault><faultcode>ServerFaultCode</faultcode>",
                        "<faultstring>The operation is not allowed in the current state.</faultstring>",
                        r#"<detail><InvalidStateFault xmlns="urn:vim25" xsi:type="InvalidState"></InvalidStateFault></detail>"#,
                        "</soapenv:Fault>"
                    )
                    .to_string(),
                ),
            };
        }
        if body.contains("<RetrievePropertiesEx") {
            let task = body
                .split(r#"type="Task">"#)
                .nth(1)
                .and_then(|s| s.split('<').next())
                .unwrap_or_default();
            let cancelled = !self.cancelled.lock().unwrap().is_empty();
            let props = match (cancelled, self.on_cancel) {
                (false, _) => {
                    prop("info.state", r#"<val xsi:type="TaskInfoState">running</val>"#)
                        + &prop("info.progress", r#"<val xsi:type="xsd:int">40</val>"#)
                }
                (true, OnCancel::Honour) => {
                    prop("info.state", r#"<val xsi:type="TaskInfoState">error</val>"#)
                        + &prop(
                            "info.error",
                            concat!(
                                r#"<val xsi:type="LocalizedMethodFault"><fault xsi:type="RequestCanceled"></fault>"#,
                                "<localizedMessage>The task was canceled by a user.</localizedMessage></val>"
                            ),
                        )
                }
                (true, OnCancel::Refuse) => {
                    prop("info.state", r#"<val xsi:type="TaskInfoState">success</val>"#)
                }
            };
            return (200, "", task_props(task, &props));
        }
        panic!("the fake vCenter does not answer {body}");
    }
}

async fn serve(fake: Arc<Fake>, mut conn: TcpStream) {
    let mut buf = Vec::new();
    loop {
        // One request: headers, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = conn.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "request cut short");
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
        buf.drain(..head_end + length);
        let (status, header, soap) = fake.answer(&body);
        let soap = envelope(&soap);
        let reason = if status == 200 {
            "OK"
        } else {
            "Internal Server Error"
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml; charset=utf-8\r\n{header}Content-Length: {}\r\n\r\n{soap}",
            soap.len()
        );
        if conn.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn fake_vcenter(on_cancel: OnCancel) -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake {
        on_cancel,
        cancelled: Mutex::new(Vec::new()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sdk", listener.local_addr().unwrap());
    let served = fake.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(serve(served.clone(), conn));
        }
    });
    (fake, url)
}

#[tokio::test]
async fn a_running_task_is_cancelled_through_its_moref() {
    let (fake, url) = fake_vcenter(OnCancel::Honour).await;
    let client = VimClient::connect(ClientConfig::new(url, "u", "p"))
        .await
        .unwrap();
    let task = MoRef::new("Task", "task-42");
    let cancel = Cancel::default();
    let mut seen = Vec::new();
    let mut refused = Vec::new();
    // The job asks as soon as the task reports progress.
    let asker = cancel.clone();
    let err = client
        .wait_task_or_cancel(
            &task,
            &mut |p| {
                seen.push(p);
                asker.request();
            },
            Some(&cancel),
            &mut |e| refused.push(e.to_string()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.fault_kind(), Some("RequestCanceled"), "{err:?}");
    assert_eq!(seen, [40]);
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(
        *fake.cancelled.lock().unwrap(),
        ["task-42"],
        "CancelTask once, on the task's own MoRef"
    );
}

#[tokio::test]
async fn a_refused_cancel_is_reported_and_the_task_runs_to_its_end() {
    let (fake, url) = fake_vcenter(OnCancel::Refuse).await;
    let client = VimClient::connect(ClientConfig::new(url, "u", "p"))
        .await
        .unwrap();
    let task = MoRef::new("Task", "task-43");
    let cancel = Cancel::default();
    cancel.request();
    let mut refused: Vec<Option<String>> = Vec::new();
    let result = client
        .wait_task_or_cancel(&task, &mut |_| {}, Some(&cancel), &mut |e: &Error| {
            refused.push(e.fault_kind().map(str::to_string))
        })
        .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(refused, [Some("InvalidState".to_string())]);
    assert_eq!(*fake.cancelled.lock().unwrap(), ["task-43"]);
}
