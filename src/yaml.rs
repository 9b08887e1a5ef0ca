//! YAML loading with errors that point at `file:line:column`.
//!
//! serde_yaml reports exact positions for syntax and type errors, but an error raised by our own
//! validation after deserialising has no position. For those, [`Locator`] re-reads the document
//! as marked events and finds the node a validation message is about.

use std::path::Path;

use serde::de::DeserializeOwned;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

use crate::error::{Error, Result};

/// One step of a path into a YAML document.
#[derive(Debug, Clone, Copy)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Deserialises `src` (the contents of `path`), turning any error into `path:line:column`.
pub fn from_str<T: DeserializeOwned>(path: &Path, src: &str) -> Result<T> {
    serde_yaml::from_str(src).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        Error::Yaml {
            path: path.to_path_buf(),
            line,
            column,
            message: strip_location(&e.to_string()),
        }
    })
}

/// serde_yaml appends " at line L column C" to its messages; the position is printed up front.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_string(),
        _ => message.to_string(),
    }
}

#[derive(Debug)]
enum Node {
    Scalar(String, Marker),
    Seq(Vec<Node>, Marker),
    Map(Vec<(Node, Node)>, Marker),
    Other(Marker),
}

impl Node {
    fn mark(&self) -> Marker {
        match self {
            Node::Scalar(_, m) | Node::Seq(_, m) | Node::Map(_, m) | Node::Other(m) => *m,
        }
    }
}

/// Finds positions of nodes in a YAML document.
pub struct Locator<'a> {
    path: &'a Path,
    root: Option<Node>,
}

impl<'a> Locator<'a> {
    pub fn new(path: &'a Path, src: &str) -> Self {
        Locator {
            path,
            root: parse_tree(src),
        }
    }

    /// The (line, column) of the node at `segs`, or of its closest existing ancestor.
    pub fn position(&self, segs: &[Seg<'_>]) -> (usize, usize) {
        let Some(mut node) = self.root.as_ref() else {
            return (1, 1);
        };
        for seg in segs {
            let next = match (seg, node) {
                (Seg::Key(k), Node::Map(entries, _)) => entries
                    .iter()
                    .find(|(key, _)| matches!(key, Node::Scalar(s, _) if s == k))
                    .map(|(_, v)| v),
                (Seg::Index(i), Node::Seq(items, _)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        let m = node.mark();
        // yaml-rust2 counts lines from 1 but columns from 0.
        (m.line(), m.col() + 1)
    }

    /// An error about the node at `segs`.
    pub fn error(&self, segs: &[Seg<'_>], message: impl Into<String>) -> Error {
        let (line, column) = self.position(segs);
        Error::Yaml {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

fn parse_tree(src: &str) -> Option<Node> {
    let mut parser = Parser::new_from_str(src);
    // Each open collection: (is_map, mark, children).
    let mut stack: Vec<(bool, Marker, Vec<Node>)> = Vec::new();
    let mut root = None;
    loop {
        let (event, mark) = parser.next_token().ok()?;
        let finished = match event {
            Event::StreamEnd => return root,
            Event::SequenceStart(..) => {
                stack.push((false, mark, Vec::new()));
                None
            }
            Event::MappingStart(..) => {
                stack.push((true, mark, Vec::new()));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (is_map, start, children) = stack.pop()?;
                Some(if is_map {
                    let mut entries = Vec::new();
                    let mut it = children.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        entries.push((k, v));
                    }
                    // The MappingStart marker of a block map points past its first key; the key
                    // itself is where a reader looks.
                    let at = entries.first().map_or(start, |(k, _)| k.mark());
                    Node::Map(entries, at)
                } else {
                    Node::Seq(children, start)
                })
            }
            Event::Scalar(value, ..) => Some(Node::Scalar(value, mark)),
            Event::Alias(_) => Some(Node::Other(mark)),
            _ => None,
        };
        if let Some(node) = finished {
            match stack.last_mut() {
                Some((_, _, children)) => children.push(node),
                None if root.is_none() => root = Some(node),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_nodes() {
        let src = "name: x\nparameters:\n  - name: a\n    type: identifier\n  - name: b\n    default: 3\n";
        let loc = Locator::new(Path::new("p.yaml"), src);
        assert_eq!(loc.position(&[Seg::Key("name")]), (1, 7));
        assert_eq!(
            loc.position(&[Seg::Key("parameters"), Seg::Index(1), Seg::Key("default")]),
            (6, 14)
        );
        // A missing key points at the closest ancestor that exists.
        assert_eq!(
            loc.position(&[Seg::Key("parameters"), Seg::Index(1), Seg::Key("nope")]),
            (5, 5)
        );
    }

    #[test]
    fn serde_errors_carry_position_without_repeating_it() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct S {
            n: u32,
        }
        let err = from_str::<S>(Path::new("f.yaml"), "n: [1]\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("f.yaml:1:4: n: invalid type"), "{text}");
        assert!(!text.contains(" at line "), "{text}");
    }
}
