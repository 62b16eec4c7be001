//! Reader and writer for WeCom's flat `<xml>` documents: one `<xml>` root whose
//! children are leaf elements holding text or CDATA.
//!
//! Both the encrypted envelope and the decrypted message use this shape. Tencent's own
//! samples mix CDATA and plain text for the same field, so a field's value is the
//! concatenation of every text, CDATA section and entity reference inside it. Children
//! with children of their own (a template card's `SelectedItems`, a passive reply's
//! `Button`) are also kept as a small tree, to a bounded depth.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::Reader;

/// The children of an `<xml>` root, in document order: each one's own text as a field,
/// and the subtree of those that have child elements (`SelectedItems`, `Button`).
#[derive(Debug, Default)]
pub(crate) struct FlatXml {
    fields: Vec<(String, String)>,
    trees: Vec<Element>,
}

/// An element below the root with its own text and its child elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) name: String,
    /// The concatenated text, CDATA and entities directly inside it.
    pub(crate) text: String,
    pub(crate) children: Vec<Element>,
}

impl Element {
    fn new(name: String) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    /// The first child named `name`.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`, in document order.
    pub(crate) fn children_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// How deep below the root subtrees are kept. WeCom's deepest path is
/// `SelectedItems/SelectedItem/OptionIds/OptionId`; anything deeper is skipped, so a
/// crafted body cannot build a tree deep enough to exhaust the stack when dropped.
const MAX_TREE_DEPTH: usize = 6;

/// The elements open below the root while parsing.
#[derive(Default)]
struct OpenElements {
    stack: Vec<Element>,
    /// Elements open beyond [`MAX_TREE_DEPTH`], whose content is dropped.
    skipped: usize,
}

impl OpenElements {
    fn open(&mut self, name: String) {
        if self.skipped > 0 || self.stack.len() >= MAX_TREE_DEPTH {
            self.skipped += 1;
        } else {
            self.stack.push(Element::new(name));
        }
    }

    /// Close the innermost element; a closed child of the root is returned.
    fn close(&mut self) -> Option<Element> {
        if self.skipped > 0 {
            self.skipped -= 1;
            return None;
        }
        let done = self.stack.pop()?;
        match self.stack.last_mut() {
            Some(parent) => {
                parent.children.push(done);
                None
            }
            None => Some(done),
        }
    }

    /// Where text goes: the innermost kept element (none directly inside the root).
    fn text_sink(&mut self) -> Option<&mut String> {
        if self.skipped > 0 {
            return None;
        }
        self.stack.last_mut().map(|e| &mut e.text)
    }
}

impl FlatXml {
    /// Parse `input`; the error string says what is wrong, for `Error::ParseXml`.
    pub(crate) fn parse(input: &str) -> Result<Self, String> {
        let mut reader = Reader::from_str(input);
        let mut doc = Self::default();
        let mut depth = 0usize;
        let mut root_done = false;
        let mut open = OpenElements::default();

        loop {
            let event = reader
                .read_event()
                .map_err(|e| format!("at byte {}: {e}", reader.error_position()))?;
            match event {
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                // quick-xml never expands external entities, but no WeCom document has a
                // DTD, so one is a sign of a crafted body.
                Event::DocType(_) => return Err("DOCTYPE is not allowed".into()),
                Event::Start(start) => {
                    let name = element_name(start.name().as_ref())?;
                    if depth == 0 {
                        open_root(&name, root_done)?;
                    } else {
                        open.open(name);
                    }
                    depth += 1;
                }
                Event::Empty(start) => {
                    let name = element_name(start.name().as_ref())?;
                    if depth == 0 {
                        open_root(&name, root_done)?;
                        root_done = true;
                    } else {
                        open.open(name);
                        if let Some(child) = open.close() {
                            doc.add(child);
                        }
                    }
                }
                Event::End(_) => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        root_done = true;
                    } else if let Some(child) = open.close() {
                        doc.add(child);
                    }
                }
                Event::Text(text) => {
                    if depth == 0 {
                        if !text.iter().all(u8::is_ascii_whitespace) {
                            return Err("text outside the <xml> element".into());
                        }
                    } else if let Some(sink) = open.text_sink() {
                        let decoded = text
                            .xml10_content()
                            .map_err(|e| format!("bad text encoding: {e}"))?;
                        sink.push_str(&decoded);
                    }
                }
                Event::CData(cdata) => {
                    if depth == 0 {
                        return Err("CDATA outside the <xml> element".into());
                    }
                    if let Some(sink) = open.text_sink() {
                        let decoded = cdata
                            .decode()
                            .map_err(|e| format!("bad CDATA encoding: {e}"))?;
                        sink.push_str(&decoded);
                    }
                }
                Event::GeneralRef(reference) => {
                    if depth == 0 {
                        return Err("entity reference outside the <xml> element".into());
                    }
                    let resolved = resolve_reference(&reference)?;
                    if let Some(sink) = open.text_sink() {
                        sink.push_str(&resolved);
                    }
                }
                Event::Eof => break,
            }
        }

        if !root_done {
            return Err(if depth == 0 {
                "no <xml> root element".into()
            } else {
                "document ends inside an element".into()
            });
        }
        Ok(doc)
    }

    fn add(&mut self, child: Element) {
        if child.children.is_empty() {
            self.fields.push((child.name, child.text));
        } else {
            self.fields.push((child.name.clone(), child.text.clone()));
            self.trees.push(child);
        }
    }

    /// The first field named `name`, if present.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first child of the root named `name` that has child elements.
    pub(crate) fn tree(&self, name: &str) -> Option<&Element> {
        self.trees.iter().find(|e| e.name == name)
    }
}

fn element_name(raw: &[u8]) -> Result<String, String> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| "element name is not UTF-8".into())
}

fn open_root(name: &str, root_done: bool) -> Result<(), String> {
    if root_done {
        return Err("more than one root element".into());
    }
    if name != "xml" {
        return Err(format!("root element must be <xml>, found <{name}>"));
    }
    Ok(())
}

fn resolve_reference(reference: &quick_xml::events::BytesRef<'_>) -> Result<String, String> {
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(ch)) => Ok(ch.to_string()),
            _ => Err("invalid character reference".into()),
        };
    }
    let name = reference
        .decode()
        .map_err(|_| "entity name is not UTF-8".to_string())?;
    resolve_predefined_entity(&name)
        .map(str::to_owned)
        .ok_or_else(|| format!("unknown entity &{name};"))
}

/// Wrap `text` in CDATA so any content survives: a `]]>` inside is split across two
/// sections, and characters XML 1.0 forbids (most C0 controls) are dropped, because
/// WeCom's parser would reject the whole reply over them.
pub(crate) fn cdata(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 12);
    push_cdata(&mut out, text);
    out
}

/// [`cdata`], appended to `out`. Every reply wraps its ciphertext and its text this
/// way, so the usual case (nothing to drop, no terminator inside) is one copy.
pub(crate) fn push_cdata(out: &mut String, text: &str) {
    // Dropped before the split: dropping a character between `]]` and `>` would
    // otherwise make a terminator after the split looked for one.
    let cleaned;
    let text = if text.chars().all(is_xml_char) {
        text
    } else {
        cleaned = text.chars().filter(|&c| is_xml_char(c)).collect::<String>();
        &cleaned
    };
    out.push_str("<![CDATA[");
    let mut parts = text.split("]]>");
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for part in parts {
        out.push_str("]]]]><![CDATA[>");
        out.push_str(part);
    }
    out.push_str("]]>");
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_cdata_text_and_entities() {
        let xml = FlatXml::parse(
            "<?xml version=\"1.0\"?>\n<xml><A><![CDATA[x]]>&lt;y&#x41;</A><B>plain</B>\n<C/></xml>\n",
        )
        .unwrap();
        assert_eq!(xml.get("A"), Some("x<yA"));
        assert_eq!(xml.get("B"), Some("plain"));
        assert_eq!(xml.get("C"), Some(""));
        assert_eq!(xml.get("D"), None);
    }

    #[test]
    fn nested_children_are_a_tree_not_fields() {
        let xml = FlatXml::parse(
            "<xml><Info>top<Inner>deep</Inner><Inner/></Info><Event>click</Event></xml>",
        )
        .unwrap();
        assert_eq!(xml.get("Inner"), None);
        assert_eq!(xml.get("Info"), Some("top"));
        assert_eq!(xml.get("Event"), Some("click"));
        let info = xml.tree("Info").unwrap();
        assert_eq!(info.child("Inner").unwrap().text, "deep");
        assert_eq!(info.children_named("Inner").count(), 2);
        assert!(xml.tree("Event").is_none());
    }

    #[test]
    fn deep_nesting_is_cut_off() {
        let depth = 10_000;
        let doc = format!(
            "<xml><A>{}x{}</A><B>b</B></xml>",
            "<n>".repeat(depth),
            "</n>".repeat(depth)
        );
        let xml = FlatXml::parse(&doc).unwrap();
        assert_eq!(xml.get("B"), Some("b"));
        let mut level = xml.tree("A").unwrap();
        let mut kept = 1;
        while let Some(next) = level.child("n") {
            level = next;
            kept += 1;
        }
        assert_eq!(kept, MAX_TREE_DEPTH);
    }

    #[test]
    fn rejects_non_xml_and_wrong_roots() {
        for bad in [
            "",
            "hello",
            "<root/>",
            "<xml><A>1</A>",
            "<xml/><xml/>",
            "<!DOCTYPE x><xml/>",
            "<xml><A>&bogus;</A></xml>",
            "<xml><A></B></xml>",
        ] {
            assert!(FlatXml::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    /// A dropped character must not leave a terminator behind that the split missed.
    #[test]
    fn cdata_drops_forbidden_characters_before_it_splits() {
        let wrapped = cdata("x]]\u{1}>y");
        assert_eq!(wrapped, "<![CDATA[x]]]]><![CDATA[>y]]>");
        let doc = format!("<xml><C>{wrapped}</C></xml>");
        assert_eq!(FlatXml::parse(&doc).unwrap().get("C"), Some("x]]>y"));
        assert_eq!(cdata("纯文本 plain"), "<![CDATA[纯文本 plain]]>");
        assert_eq!(cdata(""), "<![CDATA[]]>");
    }

    #[test]
    fn cdata_splits_terminator_and_round_trips() {
        let text = "a]]>b]]]>c\u{1}d";
        let wrapped = cdata(text);
        assert_eq!(wrapped, "<![CDATA[a]]]]><![CDATA[>b]]]]]><![CDATA[>cd]]>");
        let doc = format!("<xml><C>{wrapped}</C></xml>");
        assert_eq!(FlatXml::parse(&doc).unwrap().get("C"), Some("a]]>b]]]>cd"));
    }
}
