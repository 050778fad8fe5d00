//! A small ONNX model writer for plumbing tests: graphs whose outputs are known (constants, or simple arithmetic
//! on the input), written as protobuf by hand so that the tests need no Python. Such graphs test decoding and
//! signature checks only; they understand nothing, and tests that use them say so in their names.
//!
//! Field numbers are those of onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto).
#![allow(dead_code)]

use std::path::Path;

/// A tensor element type (TensorProto.DataType).
#[derive(Debug, Clone, Copy)]
pub enum Elem {
    F32 = 1,
    I32 = 6,
    I64 = 7,
}

/// One dimension of a graph input or output: fixed, or named (dynamic).
#[derive(Debug, Clone)]
pub enum Dim {
    Fixed(i64),
    Named(&'static str),
}

/// A node attribute.
#[derive(Debug, Clone)]
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Tensor(Tensor),
}

/// A constant tensor (initializer or `Constant` value).
#[derive(Debug, Clone)]
pub struct Tensor {
    pub name: String,
    pub dims: Vec<i64>,
    pub data: TensorData,
}

#[derive(Debug, Clone)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl Tensor {
    pub fn f32(name: &str, dims: &[i64], data: Vec<f32>) -> Self {
        assert_eq!(dims.iter().product::<i64>() as usize, data.len(), "{name}");
        Self {
            name: name.into(),
            dims: dims.to_vec(),
            data: TensorData::F32(data),
        }
    }
    pub fn i64(name: &str, dims: &[i64], data: Vec<i64>) -> Self {
        assert_eq!(dims.iter().product::<i64>() as usize, data.len(), "{name}");
        Self {
            name: name.into(),
            dims: dims.to_vec(),
            data: TensorData::I64(data),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub op: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: Vec<(String, Attr)>,
}

/// `op(inputs) -> outputs` with attributes.
pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<(&str, Attr)>) -> Node {
    Node {
        op: op.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    }
}

/// A graph: inputs, outputs (name, type, shape), initializers and nodes in topological order.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub inputs: Vec<(String, Elem, Vec<Dim>)>,
    pub outputs: Vec<(String, Elem, Vec<Dim>)>,
    pub initializers: Vec<Tensor>,
    pub nodes: Vec<Node>,
}

impl Graph {
    pub fn input(mut self, name: &str, elem: Elem, dims: Vec<Dim>) -> Self {
        self.inputs.push((name.into(), elem, dims));
        self
    }
    pub fn output(mut self, name: &str, elem: Elem, dims: Vec<Dim>) -> Self {
        self.outputs.push((name.into(), elem, dims));
        self
    }
    pub fn init(mut self, t: Tensor) -> Self {
        self.initializers.push(t);
        self
    }
    pub fn node(mut self, n: Node) -> Self {
        self.nodes.push(n);
        self
    }

    /// The serialized ModelProto (IR 8, default opset 13).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut g = Vec::new();
        for n in &self.nodes {
            msg(&mut g, 1, &node_bytes(n));
        }
        string(&mut g, 2, "plumbing_test_graph");
        for t in &self.initializers {
            msg(&mut g, 5, &tensor_bytes(t));
        }
        for (name, elem, dims) in &self.inputs {
            msg(&mut g, 11, &value_info(name, *elem, dims));
        }
        for (name, elem, dims) in &self.outputs {
            msg(&mut g, 12, &value_info(name, *elem, dims));
        }
        let mut m = Vec::new();
        varint_field(&mut m, 1, 8); // ir_version
        string(&mut m, 2, "scenewatch-tests");
        msg(&mut m, 7, &g);
        let mut opset = Vec::new();
        string(&mut opset, 1, "");
        varint_field(&mut opset, 2, 13);
        msg(&mut m, 8, &opset);
        m
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.to_bytes()).expect("write the ONNX test graph");
    }
}

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf.push(b);
            return;
        }
        buf.push(b | 0x80);
    }
}

fn key(buf: &mut Vec<u8>, field: u32, wire: u8) {
    varint(buf, ((field as u64) << 3) | wire as u64);
}

fn varint_field(buf: &mut Vec<u8>, field: u32, v: i64) {
    key(buf, field, 0);
    varint(buf, v as u64);
}

fn bytes(buf: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(buf, field, 2);
    varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

fn string(buf: &mut Vec<u8>, field: u32, s: &str) {
    bytes(buf, field, s.as_bytes());
}

fn msg(buf: &mut Vec<u8>, field: u32, m: &[u8]) {
    bytes(buf, field, m);
}

fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    let mut b = Vec::new();
    for d in &t.dims {
        varint_field(&mut b, 1, *d);
    }
    let (elem, raw): (Elem, Vec<u8>) = match &t.data {
        TensorData::F32(v) => (Elem::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::I64(v) => (Elem::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    };
    varint_field(&mut b, 2, elem as i64);
    string(&mut b, 8, &t.name);
    bytes(&mut b, 9, &raw);
    b
}

fn node_bytes(n: &Node) -> Vec<u8> {
    let mut b = Vec::new();
    for i in &n.inputs {
        string(&mut b, 1, i);
    }
    for o in &n.outputs {
        string(&mut b, 2, o);
    }
    string(
        &mut b,
        3,
        n.outputs.first().map(String::as_str).unwrap_or("node"),
    );
    string(&mut b, 4, &n.op);
    for (name, a) in &n.attrs {
        let mut ab = Vec::new();
        string(&mut ab, 1, name);
        match a {
            Attr::Float(f) => {
                key(&mut ab, 2, 5);
                ab.extend_from_slice(&f.to_le_bytes());
                varint_field(&mut ab, 20, 1);
            }
            Attr::Int(i) => {
                varint_field(&mut ab, 3, *i);
                varint_field(&mut ab, 20, 2);
            }
            Attr::Tensor(t) => {
                msg(&mut ab, 5, &tensor_bytes(t));
                varint_field(&mut ab, 20, 4);
            }
            Attr::Ints(v) => {
                for i in v {
                    varint_field(&mut ab, 8, *i);
                }
                varint_field(&mut ab, 20, 7);
            }
        }
        msg(&mut b, 5, &ab);
    }
    b
}

fn value_info(name: &str, elem: Elem, dims: &[Dim]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut db = Vec::new();
        match d {
            Dim::Fixed(v) => varint_field(&mut db, 1, *v),
            Dim::Named(s) => string(&mut db, 2, s),
        }
        msg(&mut shape, 1, &db);
    }
    let mut tensor_type = Vec::new();
    varint_field(&mut tensor_type, 1, elem as i64);
    msg(&mut tensor_type, 2, &shape);
    let mut ty = Vec::new();
    msg(&mut ty, 1, &tensor_type);
    let mut b = Vec::new();
    string(&mut b, 1, name);
    msg(&mut b, 2, &ty);
    b
}

/// A graph that declares `input` (ORT accepts an input no node reads) and returns fixed tensors: each output is
/// a `Constant` node, so what the model "says" is exactly what the test put in.
pub fn constant_output(input: (&str, Elem, Vec<Dim>), outputs: Vec<(&str, Tensor)>) -> Graph {
    let mut g = Graph::default().input(input.0, input.1, input.2);
    for (name, t) in outputs {
        let dims = t.dims.iter().map(|d| Dim::Fixed(*d)).collect();
        let elem = match t.data {
            TensorData::F32(_) => Elem::F32,
            TensorData::I64(_) => Elem::I64,
        };
        g = g
            .node(node(
                "Constant",
                &[],
                &[name],
                vec![("value", Attr::Tensor(t))],
            ))
            .output(name, elem, dims);
    }
    g
}
