//! The compiled plan: canonical JSON from `featureplane/features/plan.py`, checked in full.
//!
//! `{"depth":5,"id":"...","nodes":[{"family":"bid_px","id":"bid_px","input":null,
//! "output":true,"params":{}}, ...],"version":1}`: nodes in a topological order, `input` the
//! index of an earlier node. The Python side validates the declaration first; these checks
//! keep a malformed plan (hand-written, or from another version) an error, never a panic.

use serde_json::{Map, Value};

use super::family::{Family, Trigger, Unit};
use crate::error::{Error, Result};
use crate::features::schema::Dtype;

/// Masks are u64: at most 64 output features (the frame layout).
pub const MAX_OUTPUTS: usize = 64;
/// Nodes of a plan, internal ones included (bounds the per-symbol state).
pub const MAX_NODES: usize = 1024;

/// One node of a plan, with what follows from its family and input.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub family: Family,
    pub input: Option<usize>,
    pub output: bool,
    pub dtype: Dtype,
    pub unit: Unit,
    /// Book message or trade row: the source at the root of the node's chain.
    pub trigger: Trigger,
    /// Levels per side the node and its inputs read (a source showing fewer never readies it).
    pub levels: usize,
}

/// A checked plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub id: String,
    pub version: i64,
    /// Levels per side the plan reads (the most any node reads).
    pub depth: usize,
    pub nodes: Vec<Node>,
    /// Node index of each output feature, in frame order.
    pub outputs: Vec<usize>,
}

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("malformed feature-set plan: {msg}"))
}

fn field<'a>(obj: &'a Map<String, Value>, name: &str, what: &str) -> Result<&'a Value> {
    obj.get(name)
        .ok_or_else(|| bad(format!("{what} has no {name:?}")))
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| bad(format!("{what} must be an object")))
}

fn exact_keys(obj: &Map<String, Value>, keys: &[&str], what: &str) -> Result<()> {
    match obj.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(extra) => Err(bad(format!("{what} has an unknown key {extra:?}"))),
        None => Ok(()),
    }
}

impl Plan {
    /// Parse and check a plan's JSON text.
    pub fn from_json(text: &str) -> Result<Self> {
        let root: Value = serde_json::from_str(text).map_err(bad)?;
        let root = object(&root, "the plan")?;
        exact_keys(root, &["depth", "id", "nodes", "version"], "the plan")?;
        let id = field(root, "id", "the plan")?
            .as_str()
            .ok_or_else(|| bad("\"id\" must be a string"))?
            .to_owned();
        let version = field(root, "version", "the plan")?
            .as_i64()
            .ok_or_else(|| bad("\"version\" must be an integer"))?;
        let depth = field(root, "depth", "the plan")?
            .as_u64()
            .ok_or_else(|| bad("\"depth\" must be a non-negative integer"))?;
        let raw = field(root, "nodes", "the plan")?
            .as_array()
            .ok_or_else(|| bad("\"nodes\" must be an array"))?;
        if raw.len() > MAX_NODES {
            return Err(bad(format!("{} nodes, at most {MAX_NODES}", raw.len())));
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(raw.len());
        for (i, value) in raw.iter().enumerate() {
            let node = Self::node(i, value, &nodes)?;
            if nodes.iter().any(|n| n.id == node.id) {
                return Err(bad(format!("duplicate node id {:?}", node.id)));
            }
            nodes.push(node);
        }
        let outputs: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].output).collect();
        if outputs.is_empty() {
            return Err(bad("no output feature"));
        }
        if outputs.len() > MAX_OUTPUTS {
            return Err(bad(format!(
                "{} output features, the frame layout holds at most {MAX_OUTPUTS}",
                outputs.len()
            )));
        }
        let most = nodes.iter().map(|n| n.family.levels()).max().unwrap_or(0);
        if depth < most as u64 {
            return Err(bad(format!(
                "\"depth\" is {depth}, the nodes read {most} levels"
            )));
        }
        Ok(Self {
            id,
            version,
            depth: most,
            nodes,
            outputs,
        })
    }

    fn node(i: usize, value: &Value, earlier: &[Node]) -> Result<Node> {
        let what = format!("node {i}");
        let obj = object(value, &what)?;
        exact_keys(obj, &["family", "id", "input", "output", "params"], &what)?;
        let id = field(obj, "id", &what)?
            .as_str()
            .ok_or_else(|| bad(format!("{what}: \"id\" must be a string")))?
            .to_owned();
        let what = format!("node {i} ({id})");
        let name = field(obj, "family", &what)?
            .as_str()
            .ok_or_else(|| bad(format!("{what}: \"family\" must be a string")))?;
        let params = object(field(obj, "params", &what)?, &format!("{what}: params"))?;
        let family = Family::parse(name, params).map_err(|e| bad(format!("{what}: {e}")))?;
        let output = field(obj, "output", &what)?
            .as_bool()
            .ok_or_else(|| bad(format!("{what}: \"output\" must be true or false")))?;
        let input = match field(obj, "input", &what)? {
            Value::Null => None,
            v => match v.as_u64() {
                Some(j) if (j as usize) < i => Some(j as usize),
                _ => {
                    return Err(bad(format!(
                        "{what}: \"input\" must be the index of an earlier node, got {v}"
                    )))
                }
            },
        };
        if input.is_some() != family.takes_input() {
            let need = if family.takes_input() {
                "needs"
            } else {
                "takes no"
            };
            return Err(bad(format!("{what}: family {name} {need} input")));
        }
        let from = input.map(|j| &earlier[j]);
        if let (Family::BookRegime { .. }, Some(src)) = (family, from) {
            if !matches!(src.family, Family::Ema { .. }) {
                return Err(bad(format!("{what}: book_regime reads an ema node")));
            }
        }
        let (dtype, unit) = family
            .kind(from.map(|n| (n.dtype, n.unit)))
            .map_err(|e| bad(format!("{what}: {name} {e}")))?;
        let trigger = match (family.trigger(), from) {
            (Some(t), _) => t,
            (None, Some(src)) => src.trigger,
            // A transform without input was refused above; kept an error, never a panic.
            (None, None) => return Err(bad(format!("{what}: family {name} needs input"))),
        };
        let levels = family.levels().max(from.map_or(0, |n| n.levels));
        Ok(Node {
            id,
            family,
            input,
            output,
            dtype,
            unit,
            trigger,
            levels,
        })
    }

    /// (id, dtype) of each output feature, in frame order.
    pub fn features(&self) -> Vec<(&str, Dtype)> {
        self.outputs
            .iter()
            .map(|&i| (self.nodes[i].id.as_str(), self.nodes[i].dtype))
            .collect()
    }

    /// The dtype of each output feature, in frame order.
    pub fn dtypes(&self) -> Vec<Dtype> {
        self.outputs.iter().map(|&i| self.nodes[i].dtype).collect()
    }
}
