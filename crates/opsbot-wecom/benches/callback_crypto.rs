//! The per-message cost of a WeCom callback: verify the signature, decrypt, parse the
//! XML, and encrypt the passive reply (target: ≥ 100,000 messages/s on one core).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opsbot_fakes::build_callback_post;
use opsbot_wecom::message::text_reply_xml;
use opsbot_wecom::{Message, WecomCrypto};

fn bench(c: &mut Criterion) {
    let crypto = WecomCrypto::new(
        "QDG6eK",
        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        "ww1436e0e65a779aee",
    )
    .unwrap();
    let xml = "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[克隆:2,工具柜管理系统,192.168.2.182]]></Content><MsgId>7000000000001</MsgId><AgentID>1000002</AgentID></xml>";
    let post = build_callback_post(
        &crypto,
        1000002,
        xml,
        b"0123456789abcdef",
        "1700000000",
        "1320562132",
    );
    let mut g = c.benchmark_group("wecom_callback");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify+decrypt+parse+encrypt_reply", |b| {
        b.iter(|| {
            let plain = crypto
                .decrypt_message(&post.msg_signature, "1700000000", "1320562132", &post.body)
                .unwrap();
            let msg = Message::parse(&plain).unwrap();
            let reply = text_reply_xml(
                &msg.from,
                "ww1436e0e65a779aee",
                1700000001,
                "已受理 #42: 克隆 工具柜管理系统",
            );
            crypto.encrypt_reply(&reply, "1700000000", "1320562132")
        })
    });
    g.bench_function("verify+decrypt", |b| {
        b.iter(|| {
            crypto
                .decrypt_message(&post.msg_signature, "1700000000", "1320562132", &post.body)
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
