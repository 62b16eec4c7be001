//! A tiny namespace-aware DOM over quick-xml, just enough for vim25 SOAP answers.
//!
//! Element and attribute names are kept as *local* names: vim25 answers mix the
//! `urn:vim25`, SOAP envelope and XML Schema namespaces, and nothing we read is ambiguous
//! by local name. The one attribute whose namespace matters is `xsi:type`: vcsim writes it
//! under another prefix (`XMLSchema-instance:type`), so it is resolved by namespace URI and
//! stored apart in [`Node::xsi_type`] (the local part of its QName value, `xsd:int` → `int`).

use crate::client::MoRef;
use crate::error::{Error, Result};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// Namespace of the `type` attribute that marks polymorphic values.
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// One element: local name, resolved `xsi:type`, other attributes, text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    /// Local name of the element (no prefix).
    pub name: String,
    /// Local part of the `xsi:type` QName value, namespace-resolved.
    pub xsi_type: Option<String>,
    /// Other attributes as (local name, unescaped value); `xmlns` declarations are dropped.
    pub attrs: Vec<(String, String)>,
    /// Unescaped text content. Whitespace-only text of elements with children is dropped.
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// The first child with this local name.
    pub fn child(&self, local: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == local)
    }

    /// Every child with this local name, in document order.
    pub fn children_named<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a Node> {
        self.children.iter().filter(move |c| c.name == local)
    }

    /// Walks `a.b.c` through first children of those names.
    pub fn path(&self, dotted: &str) -> Option<&Node> {
        dotted
            .split('.')
            .filter(|s| !s.is_empty())
            .try_fold(self, |node, part| node.child(part))
    }

    /// Text of the node at `dotted` (see [`Node::path`]).
    pub fn text_at(&self, dotted: &str) -> Option<&str> {
        self.path(dotted).map(|n| n.text.as_str())
    }

    /// An attribute by local name.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == local)
            .map(|(_, v)| v.as_str())
    }

    /// This element read as a managed object reference (`<x type="Kind">value</x>`).
    pub fn moref(&self) -> Option<MoRef> {
        let kind = self.attr("type")?;
        if self.text.is_empty() {
            return None;
        }
        Some(MoRef::new(kind, self.text.as_str()))
    }

    /// The MoRefs held by an `ArrayOfManagedObjectReference` value (or any node whose
    /// children are MoRefs).
    pub fn morefs(&self) -> Vec<MoRef> {
        self.children.iter().filter_map(Node::moref).collect()
    }

    /// Text parsed as a number, bool, ... at `dotted`.
    pub fn parse_at<T: std::str::FromStr>(&self, dotted: &str) -> Option<T> {
        self.text_at(dotted).and_then(|t| t.trim().parse().ok())
    }
}

/// Escapes text for use in XML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Parses a whole document into its root element.
pub fn parse(doc: &str) -> Result<Node> {
    let mut reader = NsReader::from_str(doc);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let event = match reader.read_resolved_event() {
            Ok((_, event)) => event,
            Err(e) => return Err(bad_xml(reader.buffer_position(), e)),
        };
        match event {
            Event::Start(start) => {
                let node = open(&reader, &start)?;
                stack.push(node);
            }
            Event::Empty(start) => {
                let node = open(&reader, &start)?;
                close(&mut stack, &mut root, node);
            }
            Event::End(_) => {
                let Some(mut node) = stack.pop() else {
                    return Err(Error::Protocol("XML: unbalanced end tag".into()));
                };
                if !node.children.is_empty() && node.text.trim().is_empty() {
                    node.text = String::new();
                }
                close(&mut stack, &mut root, node);
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t
                        .decode()
                        .map_err(|e| Error::Protocol(format!("XML: {e}")))?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t
                        .decode()
                        .map_err(|e| Error::Protocol(format!("XML: {e}")))?;
                    top.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    if let Some(c) = r
                        .resolve_char_ref()
                        .map_err(|e| Error::Protocol(format!("XML: {e}")))?
                    {
                        top.text.push(c);
                    } else {
                        let name = r
                            .decode()
                            .map_err(|e| Error::Protocol(format!("XML: {e}")))?;
                        let c = match name.as_ref() {
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "quot" => '"',
                            "apos" => '\'',
                            other => {
                                return Err(Error::Protocol(format!(
                                    "XML: unknown entity &{other};"
                                )))
                            }
                        };
                        top.text.push(c);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(Error::Protocol(
            "XML: document ends inside an element".into(),
        ));
    }
    root.ok_or_else(|| Error::Protocol("XML: empty document".into()))
}

fn bad_xml(position: u64, e: quick_xml::Error) -> Error {
    Error::Protocol(format!("XML: {e} at byte {position}"))
}

fn close(stack: &mut [Node], root: &mut Option<Node>, node: Node) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => {
            if root.is_none() {
                *root = Some(node);
            }
        }
    }
}

fn open(reader: &NsReader<&[u8]>, start: &BytesStart<'_>) -> Result<Node> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut node = Node {
        name,
        ..Node::default()
    };
    for attr in start.attributes() {
        let attr = attr.map_err(|e| Error::Protocol(format!("XML attribute: {e}")))?;
        let key = attr.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let (ns, local) = reader.resolve_attribute(key);
        let value = attr
            .unescape_value()
            .map_err(|e| Error::Protocol(format!("XML attribute: {e}")))?
            .into_owned();
        let local = String::from_utf8_lossy(local.as_ref()).into_owned();
        let is_xsi = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == XSI_NS.as_bytes());
        if is_xsi && local == "type" {
            let qname_local = value.rsplit(':').next().unwrap_or(&value).to_string();
            node.xsi_type = Some(qname_local);
        } else if !is_xsi {
            node.attrs.push((local, value));
        }
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_xsi_type_under_any_prefix() {
        let doc = r#"<a xmlns="urn:vim25" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
            <val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="xsd:int">4</val>
            <fault xsi:type="InvalidPowerState"><requestedState>poweredOff</requestedState></fault>
            <obj type="Datastore">/tmp/ds&amp;x@folder-5</obj>
            <other type="plain">x &lt; y</other>
            <e/>
        </a>"#;
        let n = parse(doc).unwrap();
        assert_eq!(n.name, "a");
        assert_eq!(n.child("val").unwrap().xsi_type.as_deref(), Some("int"));
        assert_eq!(n.child("val").unwrap().text, "4");
        assert!(n.child("val").unwrap().attrs.is_empty());
        assert_eq!(
            n.child("fault").unwrap().xsi_type.as_deref(),
            Some("InvalidPowerState")
        );
        assert_eq!(n.text_at("fault.requestedState"), Some("poweredOff"));
        let m = n.child("obj").unwrap().moref().unwrap();
        assert_eq!(m, MoRef::new("Datastore", "/tmp/ds&x@folder-5"));
        assert_eq!(n.child("other").unwrap().text, "x < y");
        assert_eq!(n.child("e").unwrap().text, "");
        assert_eq!(n.text, "");
        assert_eq!(n.children_named("obj").count(), 1);
    }

    #[test]
    fn escape_round_trips() {
        let raw = r#"session[a&b]<"x'>"#;
        let doc = format!("<x a=\"{}\">{}</x>", escape(raw), escape(raw));
        let n = parse(&doc).unwrap();
        assert_eq!(n.text, raw);
        assert_eq!(n.attr("a"), Some(raw));
    }

    #[test]
    fn rejects_broken_xml() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("").is_err());
    }
}
