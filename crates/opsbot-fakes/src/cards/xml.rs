//! Just enough XML for the fake to read opsbot's passive replies to a card click
//! (`<xml><MsgType/>…<Button><ReplaceName/></Button></xml>`) and to write click events.

use quick_xml::events::Event;
use quick_xml::Reader;

/// An element: its direct text (text, CDATA and entities joined) and its children.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) text: String,
    pub(crate) children: Vec<Node>,
}

impl Node {
    pub(crate) fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub(crate) fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

/// Parse a whole document into its root element.
pub(crate) fn parse(input: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(input);
    let mut stack: Vec<Node> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("reply XML: {e}: {input:?}"))?;
        match event {
            Event::Start(start) => stack.push(Node {
                name: String::from_utf8_lossy(start.name().as_ref()).into_owned(),
                ..Node::default()
            }),
            Event::Empty(start) => {
                let node = Node {
                    name: String::from_utf8_lossy(start.name().as_ref()).into_owned(),
                    ..Node::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return Ok(node),
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or("unbalanced reply XML")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return Ok(node),
                }
            }
            Event::Text(text) => {
                if let Some(node) = stack.last_mut() {
                    let decoded = text.xml10_content().map_err(|e| e.to_string())?;
                    node.text.push_str(&decoded);
                }
            }
            Event::CData(cdata) => {
                if let Some(node) = stack.last_mut() {
                    node.text
                        .push_str(&cdata.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(node) = stack.last_mut() {
                    if let Ok(Some(ch)) = reference.resolve_char_ref() {
                        node.text.push(ch);
                    } else {
                        let name = reference.decode().map_err(|e| e.to_string())?;
                        let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("unknown entity &{name};"))?;
                        node.text.push_str(resolved);
                    }
                }
            }
            Event::Eof => return Err(format!("reply XML ends early: {input:?}")),
            _ => {}
        }
    }
}

/// `<![CDATA[text]]>`, a `]]>` inside split across two sections.
pub(crate) fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}
