//! WeCom callback cryptography (PROTOCOLS.md §1): URL verification, decrypting callback
//! POSTs and encrypting passive replies.
//!
//! The scheme is Tencent's `WXBizMsgCrypt`: AES-256-CBC with the IV fixed to the first 16
//! key bytes, PKCS#7 padding over a **32-byte** block, plaintext
//! `random16 | u32 BE length | msg | receive_id`, and a SHA1 signature over the sorted
//! `[token, timestamp, nonce, Encrypt]`. Unlike the reference library we check the padding
//! strictly and compare signatures in constant time.

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use rand::distr::{Alphanumeric, SampleString};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::xml::{push_cdata, FlatXml};

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// WeCom pads to 32 bytes although AES blocks are 16.
const PAD_BLOCK: usize = 32;
const RANDOM_LEN: usize = 16;
const LEN_FIELD: usize = 4;

/// Decoding as Python's `base64.b64decode` does for well-formed input: tolerate non-zero
/// trailing bits and missing padding. The signature has already been checked when we
/// decode, so leniency here cannot be exploited; strictness would only turn a
/// ciphertext-length problem (-40007) into a base64 one (-40010).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The pieces of an encrypted callback POST body (`<xml><ToUserName/><Encrypt/><AgentID/></xml>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedEnvelope {
    /// `<ToUserName>`: the CorpID, unauthenticated.
    pub to_user_name: Option<String>,
    /// `<Encrypt>`: the only signed part.
    pub encrypt: String,
    /// `<AgentID>`: the app id, unauthenticated.
    pub agent_id: Option<String>,
}

impl EncryptedEnvelope {
    /// Parse the outer POST body. Missing `<Encrypt>` or non-XML is -40002.
    pub fn parse(body_xml: &str) -> Result<Self> {
        let xml = FlatXml::parse(body_xml).map_err(Error::ParseXml)?;
        let encrypt = xml
            .get("Encrypt")
            .ok_or_else(|| Error::ParseXml("no <Encrypt> element".into()))?
            .to_owned();
        Ok(Self {
            to_user_name: xml.get("ToUserName").map(str::to_owned),
            encrypt,
            agent_id: xml.get("AgentID").map(str::to_owned),
        })
    }
}

/// Who sends the callbacks a [`WecomCrypto`] opens. The scheme is the same for all; a
/// refusal names the console and the id of the right one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peer {
    /// A self-built WeCom app: the receive id is the CorpID.
    App,
    /// A WeCom smart robot (智能机器人) in API mode: the receive id is `""`.
    Robot,
    /// A WeChat Official Account in safe mode: the receive id is the AppID.
    OfficialAccount,
}

impl Peer {
    /// Where this peer's callback Token is set.
    pub fn token_setting(self) -> &'static str {
        match self {
            Peer::App => "the app's 接收消息 → API接收 settings (Token) in the WeCom admin console",
            Peer::Robot => "the robot's API mode settings (智能机器人 → API 模式 → Token) in WeCom",
            Peer::OfficialAccount => {
                "公众号 → 设置与开发 → 基本配置 → 服务器配置 (令牌 Token) on the WeChat \
                 Official Accounts Platform"
            }
        }
    }
}

/// The callback crypto for one WeCom app, smart robot or Official Account: its Token,
/// EncodingAESKey and receive id.
#[derive(Clone)]
pub struct WecomCrypto {
    token: String,
    key: [u8; 32],
    receive_id: String,
    peer: Peer,
}

impl std::fmt::Debug for WecomCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Token and key are the secrets that authenticate WeCom to us.
        f.debug_struct("WecomCrypto")
            .field("token", &"<redacted>")
            .field("key", &"<redacted>")
            .field("receive_id", &self.receive_id)
            .field("peer", &self.peer)
            .finish()
    }
}

impl WecomCrypto {
    /// `receive_id` is the CorpID for a self-built app (the suite id for third-party
    /// suites), `""` for a smart robot (then the peer is [`Peer::Robot`], else
    /// [`Peer::App`]; an Official Account says so with [`Self::with_peer`]). Fails with
    /// -40004 unless `encoding_aes_key` is 43 base64 characters.
    pub fn new(
        token: impl Into<String>,
        encoding_aes_key: &str,
        receive_id: impl Into<String>,
    ) -> Result<Self> {
        if encoding_aes_key.len() != 43 {
            return Err(Error::IllegalAesKey("it is not 43 characters long"));
        }
        // The console shows the key without its single '=' of padding.
        let decoded = LENIENT_BASE64
            .decode(encoding_aes_key)
            .map_err(|_| Error::IllegalAesKey("it is not base64"))?;
        let key: [u8; 32] = decoded
            .try_into()
            .map_err(|_| Error::IllegalAesKey("it does not decode to 32 bytes"))?;
        let receive_id = receive_id.into();
        let peer = if receive_id.is_empty() {
            Peer::Robot
        } else {
            Peer::App
        };
        Ok(Self {
            token: token.into(),
            key,
            receive_id,
            peer,
        })
    }

    /// The same keys, for callbacks from `peer` (what refusals name).
    pub fn with_peer(mut self, peer: Peer) -> Self {
        self.peer = peer;
        self
    }

    /// The configured receive id (CorpID).
    pub fn receive_id(&self) -> &str {
        &self.receive_id
    }

    /// Who the callbacks come from.
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// `lowercase_hex(sha1(concat(sort([token, timestamp, nonce, encrypt]))))`.
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        sha1_sorted(&mut [
            self.token.as_bytes(),
            timestamp.as_bytes(),
            nonce.as_bytes(),
            encrypt.as_bytes(),
        ])
    }

    /// Check `msg_signature` in constant time, so its bytes cannot be guessed one by one.
    pub fn verify_signature(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<()> {
        let expected = self.signature(timestamp, nonce, encrypt);
        if signatures_match(&expected, msg_signature) {
            Ok(())
        } else {
            Err(Error::ValidateSignature(self.peer))
        }
    }

    /// Handle the GET URL check (§1.7): verify the signature over `echostr`, decrypt it and
    /// return the plaintext, which is the verbatim HTTP 200 body. All arguments must
    /// already be percent-decoded.
    pub fn verify_url(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        echostr: &str,
    ) -> Result<String> {
        self.verify_signature(msg_signature, timestamp, nonce, echostr)?;
        self.decrypt(echostr)
    }

    /// Handle a callback POST (§1.8): parse the envelope, verify the signature, decrypt,
    /// check the receive id, and return the plaintext message XML. The order of checks is
    /// Tencent's, so each failure carries the code the reference library would give.
    pub fn decrypt_message(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        body_xml: &str,
    ) -> Result<String> {
        let envelope = EncryptedEnvelope::parse(body_xml)?;
        self.verify_signature(msg_signature, timestamp, nonce, &envelope.encrypt)?;
        self.decrypt(&envelope.encrypt)
    }

    /// Decrypt a base64 `Encrypt` value **without** checking any signature; callers must
    /// have verified it (use [`Self::decrypt_message`] or [`Self::verify_url`]).
    pub fn decrypt(&self, encrypt_b64: &str) -> Result<String> {
        let mut buf = LENIENT_BASE64
            .decode(encrypt_b64)
            .map_err(|_| Error::DecodeBase64)?;
        if buf.is_empty() || buf.len() % 16 != 0 {
            return Err(Error::DecryptAes(
                "ciphertext length is not a positive multiple of 16",
            ));
        }
        let iv: [u8; 16] = self.iv();
        let plain_len = Aes256CbcDec::new(&self.key.into(), &iv.into())
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| Error::DecryptAes("AES-CBC decryption failed"))?
            .len();
        buf.truncate(plain_len);

        let unpadded = strip_pkcs7_32(&buf)?;
        if unpadded.len() < RANDOM_LEN + LEN_FIELD {
            return Err(Error::IllegalBuffer(
                "shorter than the random prefix and length field",
            ));
        }
        let (len_bytes, rest) = unpadded[RANDOM_LEN..].split_at(LEN_FIELD);
        let msg_len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let msg_len = usize::try_from(msg_len)
            .ok()
            .filter(|&len| len <= rest.len())
            .ok_or(Error::IllegalBuffer(
                "message length exceeds the decrypted data",
            ))?;
        let (msg, receive_id) = rest.split_at(msg_len);
        if receive_id != self.receive_id.as_bytes() {
            return Err(Error::ValidateCorpid {
                peer: self.peer,
                expected: self.receive_id.clone(),
                actual: String::from_utf8_lossy(receive_id)
                    .chars()
                    .take(64)
                    .collect(),
            });
        }
        String::from_utf8(msg.to_vec())
            .map_err(|_| Error::IllegalBuffer("message is not valid UTF-8"))
    }

    /// Encrypt `plaintext` with an explicit 16-byte random prefix and return the base64
    /// `Encrypt` value. Deterministic; for tests and the fake server.
    pub fn encrypt_with_random(&self, plaintext: &str, random16: &[u8; 16]) -> String {
        let msg = plaintext.as_bytes();
        let receive_id = self.receive_id.as_bytes();
        // WeCom caps messages far below 4 GiB; saturating keeps this total instead of panicking.
        let msg_len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
        let mut buf =
            Vec::with_capacity(RANDOM_LEN + LEN_FIELD + msg.len() + receive_id.len() + PAD_BLOCK);
        buf.extend_from_slice(random16);
        buf.extend_from_slice(&msg_len.to_be_bytes());
        buf.extend_from_slice(msg);
        buf.extend_from_slice(receive_id);
        let pad = PAD_BLOCK - buf.len() % PAD_BLOCK;
        // `pad` is in 1..=32, so the cast is lossless.
        buf.resize(buf.len() + pad, pad as u8);

        let iv: [u8; 16] = self.iv();
        let len = buf.len();
        let ciphertext = Aes256CbcEnc::new(&self.key.into(), &iv.into())
            .encrypt_padded_mut::<NoPadding>(&mut buf, len)
            .expect("buffer is padded to a multiple of the AES block size");
        STANDARD.encode(ciphertext)
    }

    /// Build the encrypted passive-reply body (§1.9) for `plaintext_xml`, with a fresh
    /// random prefix. `timestamp` and `nonce` may be the request's.
    pub fn encrypt_reply(&self, plaintext_xml: &str, timestamp: &str, nonce: &str) -> String {
        let random = Alphanumeric.sample_string(&mut rand::rng(), RANDOM_LEN);
        let mut random16 = [0u8; RANDOM_LEN];
        random16.copy_from_slice(random.as_bytes());
        self.encrypt_reply_with_random(plaintext_xml, timestamp, nonce, &random16)
    }

    /// [`Self::encrypt_reply`] with an injected random prefix, for byte-exact tests.
    pub fn encrypt_reply_with_random(
        &self,
        plaintext_xml: &str,
        timestamp: &str,
        nonce: &str,
        random16: &[u8; 16],
    ) -> String {
        let encrypt = self.encrypt_with_random(plaintext_xml, random16);
        let signature = self.signature(timestamp, nonce, &encrypt);
        // Tencent's AES_TEXT_RESPONSE_TEMPLATE, newlines included. TimeStamp is bare text,
        // so escape it in case a caller passes something odd.
        let mut out = String::with_capacity(encrypt.len() + nonce.len() + timestamp.len() + 160);
        out.push_str("<xml>\n<Encrypt>");
        push_cdata(&mut out, &encrypt);
        out.push_str("</Encrypt>\n<MsgSignature>");
        push_cdata(&mut out, &signature);
        out.push_str("</MsgSignature>\n<TimeStamp>");
        out.push_str(&quick_xml::escape::escape(timestamp));
        out.push_str("</TimeStamp>\n<Nonce>");
        push_cdata(&mut out, nonce);
        out.push_str("</Nonce>\n</xml>");
        out
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }
}

/// Strict PKCS#7 over 32-byte blocks. The pad check need not be constant time: the
/// signature is verified before decryption, so there is no padding oracle to exploit.
fn strip_pkcs7_32(buf: &[u8]) -> Result<&[u8]> {
    let pad = usize::from(*buf.last().ok_or(Error::DecryptAes("empty plaintext"))?);
    if !(1..=PAD_BLOCK).contains(&pad) || pad > buf.len() {
        return Err(Error::DecryptAes("invalid PKCS#7 padding length"));
    }
    let (content, padding) = buf.split_at(buf.len() - pad);
    if padding.iter().any(|&b| usize::from(b) != pad) {
        return Err(Error::DecryptAes("inconsistent PKCS#7 padding bytes"));
    }
    Ok(content)
}

/// `lowercase_hex(sha1(concat(sort(parts))))`, the signature of every Tencent callback
/// (sorted bytewise, as Python's `sorted` sorts the ASCII strings involved).
pub(crate) fn sha1_sorted(parts: &mut [&[u8]]) -> String {
    parts.sort_unstable();
    let mut hasher = Sha1::new();
    for part in parts.iter() {
        hasher.update(part);
    }
    hex_lower(&hasher.finalize())
}

/// Compare a received signature with the expected one in constant time.
pub(crate) fn signatures_match(expected: &str, received: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(received.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Refuse a callback whose `timestamp` is not a Unix time within `window_secs` of
/// `now_unix` (either direction), limiting how long a captured request can be replayed.
pub fn check_timestamp(ts: &str, now_unix: i64, window_secs: i64) -> Result<()> {
    let stale = |reason: String| Error::StaleTimestamp {
        timestamp: ts.chars().take(32).collect(),
        reason,
    };
    if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(stale("not a decimal Unix timestamp".into()));
    }
    let value: i64 = ts
        .parse()
        .map_err(|_| stale("out of range for a Unix timestamp".into()))?;
    let skew = now_unix.saturating_sub(value);
    if skew.unsigned_abs() > window_secs.unsigned_abs() {
        return Err(stale(format!(
            "{} s away from the server clock, the limit is {} s",
            skew.unsigned_abs(),
            window_secs.unsigned_abs()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

    #[test]
    fn key_must_be_43_base64_chars() {
        assert_eq!(
            WecomCrypto::new("t", "short", "c").unwrap_err().code(),
            Some(-40004)
        );
        let not_b64 = "!".repeat(43);
        assert_eq!(
            WecomCrypto::new("t", &not_b64, "c").unwrap_err().code(),
            Some(-40004)
        );
        assert!(WecomCrypto::new("t", KEY, "c").is_ok());
    }

    #[test]
    fn debug_and_errors_hide_secrets() {
        let crypto = WecomCrypto::new("SECRET_TOKEN", KEY, "wxcorp").unwrap();
        let debug = format!("{crypto:?}");
        assert!(!debug.contains("SECRET_TOKEN") && !debug.contains(KEY));
        let mut bad_key = KEY.to_string();
        bad_key.pop();
        let err = WecomCrypto::new("SECRET_TOKEN", &bad_key, "wxcorp").unwrap_err();
        assert!(!err.to_string().contains(&bad_key));
    }

    #[test]
    fn strict_padding() {
        let mut ok = vec![7u8; 10];
        ok.extend_from_slice(&[3, 3, 3]);
        assert_eq!(strip_pkcs7_32(&ok).unwrap().len(), 10);
        assert!(strip_pkcs7_32(&[1, 2, 0]).is_err());
        assert!(strip_pkcs7_32(&[33; 40]).is_err());
        assert!(strip_pkcs7_32(&[9, 3, 3]).is_err());
        assert!(strip_pkcs7_32(&[5, 5]).is_err());
        assert_eq!(strip_pkcs7_32(&[32; 32]).unwrap().len(), 0);
    }

    #[test]
    fn round_trip_and_reply_signature() {
        let crypto = WecomCrypto::new("tok", KEY, "wxcorp").unwrap();
        let reply = crypto.encrypt_reply("<xml>hi</xml>", "1700000000", "42");
        let xml = FlatXml::parse(&reply).unwrap();
        let sig = xml.get("MsgSignature").unwrap();
        let plain = crypto
            .decrypt_message(sig, "1700000000", "42", &reply)
            .unwrap();
        assert_eq!(plain, "<xml>hi</xml>");
    }

    #[test]
    fn timestamps() {
        assert!(check_timestamp("1700000000", 1_700_000_100, 300).is_ok());
        assert!(check_timestamp("1700000400", 1_700_000_100, 300).is_ok());
        for bad in [
            "1699999000",
            "1700001000",
            "",
            "17e8",
            "-5",
            "99999999999999999999999",
        ] {
            let err = check_timestamp(bad, 1_700_000_100, 300).unwrap_err();
            assert_eq!(err.code(), Some(-40001), "{bad}");
        }
    }
}
