//! Property tests: hostile input never panics the callback path, and encryption, reply
//! XML and message splitting round-trip arbitrary content.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use base64::Engine;
use opsbot_fakes::build_callback_post;
use opsbot_wecom::message::text_reply_xml;
use opsbot_wecom::split::{split_chunks, split_message};
use opsbot_wecom::{Message, MessageBody, WecomCrypto};
use proptest::prelude::*;

const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP: &str = "wx5823bf96d3bd56c7";

fn crypto() -> WecomCrypto {
    WecomCrypto::new("QDG6eK", KEY, CORP).unwrap()
}

/// XML-ish documents that get past the first bytes of the parser.
fn xmlish() -> impl Strategy<Value = String> {
    let field = (
        prop::sample::select(vec![
            "ToUserName",
            "FromUserName",
            "CreateTime",
            "MsgType",
            "Content",
            "MsgId",
            "AgentID",
            "Event",
            "EventKey",
            "TaskId",
            "Encrypt",
            "x",
        ]),
        ".{0,12}",
        any::<bool>(),
    )
        .prop_map(|(name, value, cdata)| {
            if cdata {
                format!("<{name}><![CDATA[{value}]]></{name}>")
            } else {
                format!("<{name}>{value}</{name}>")
            }
        });
    prop::collection::vec(field, 0..8).prop_map(|fields| format!("<xml>{}</xml>", fields.concat()))
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decrypt_message_never_panics(sig in ".{0,48}", ts in ".{0,12}", nonce in ".{0,12}", body in ".{0,300}") {
        let _ = crypto().decrypt_message(&sig, &ts, &nonce, &body);
    }

    #[test]
    fn decrypt_message_never_panics_on_xmlish(body in xmlish()) {
        let _ = crypto().decrypt_message("0", "1", "2", &body);
    }

    #[test]
    fn verify_url_never_panics(sig in ".{0,48}", echostr in "[A-Za-z0-9+/=!]{0,200}") {
        let _ = crypto().verify_url(&sig, "1700000000", "1", &echostr);
    }

    /// Correctly signed garbage exercises padding and length parsing past the signature.
    #[test]
    fn signed_random_ciphertext_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let crypto = crypto();
        let encrypt = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let signature = crypto.signature("1700000000", "7", &encrypt);
        let body = format!("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
        let _ = crypto.decrypt_message(&signature, "1700000000", "7", &body);
        let _ = crypto.verify_url(&signature, "1700000000", "7", &encrypt);
    }

    #[test]
    fn message_parse_never_panics(text in ".{0,400}") {
        let _ = Message::parse(&text);
    }

    #[test]
    fn message_parse_never_panics_on_xmlish(doc in xmlish()) {
        let _ = Message::parse(&doc);
    }

    #[test]
    fn encrypt_then_decrypt_round_trips(
        msg in any::<String>(),
        receive_id in any::<String>(),
        random in any::<[u8; 16]>(),
        nonce in "[0-9]{1,10}",
    ) {
        let crypto = WecomCrypto::new("token", KEY, receive_id).unwrap();
        let post = build_callback_post(&crypto, 1_000_002, &msg, &random, "1700000000", &nonce);
        let plain = crypto.decrypt_message(&post.msg_signature, "1700000000", &nonce, &post.body).unwrap();
        prop_assert_eq!(&plain, &msg);
        let echoed = crypto.verify_url(&post.msg_signature, "1700000000", &nonce, &post.encrypt).unwrap();
        prop_assert_eq!(echoed, msg);
    }

    #[test]
    fn encrypted_reply_round_trips(content in any::<String>()) {
        let crypto = crypto();
        let plain = text_reply_xml("zhangsan", CORP, 1_700_000_400, &content);
        let reply = crypto.encrypt_reply(&plain, "1700000400", "99");
        let start = reply.find("<MsgSignature><![CDATA[").unwrap() + 23;
        let signature = &reply[start..start + 40];
        prop_assert_eq!(crypto.decrypt_message(signature, "1700000400", "99", &reply).unwrap(), plain);
    }

    /// Whatever the content, the reply XML parses back to it (minus XML-illegal chars).
    #[test]
    fn reply_xml_round_trips_content(content in any::<String>()) {
        let xml = text_reply_xml("zhangsan", CORP, 1, &content)
            .replace("</xml>", "<MsgId>1</MsgId></xml>");
        let parsed = Message::parse(&xml).unwrap();
        let expected: String = content.chars().filter(|&c| is_xml_char(c)).collect();
        prop_assert_eq!(parsed.body, MessageBody::Text { content: expected, msg_id: "1".into(), chat_id: None });
        prop_assert_eq!(parsed.to, "zhangsan");
    }

    #[test]
    fn chunks_partition_the_text_within_the_limit(text in any::<String>(), max in 4usize..300) {
        let chunks = split_chunks(&text, max);
        prop_assert_eq!(chunks.concat(), text.clone());
        prop_assert!(chunks.iter().all(|c| c.len() <= max));
        prop_assert!(chunks.len() == 1 || chunks.iter().all(|c| !c.is_empty()));
    }

    #[test]
    fn numbered_parts_fit_and_count(text in "(.{0,40}\n?){0,80}", max in 32usize..600) {
        let parts = split_message(&text, max);
        prop_assert!(parts.iter().all(|p| p.len() <= max));
        if parts.len() > 1 {
            let n = parts.len();
            for (i, part) in parts.iter().enumerate() {
                let marker = format!("\n({}/{n})", i + 1);
                prop_assert!(part.ends_with(&marker));
            }
        } else {
            prop_assert_eq!(&parts[0], &text);
        }
    }
}
