//! A pickle reader that never executes anything: it walks the opcodes into a tree of inert
//! values. Globals are only names; calling one (`REDUCE`, `NEWOBJ`, `INST`, `OBJ`) makes an
//! opaque [`Node::Call`], except for the few constructors state dicts are made of
//! (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch.Size`, ...), which
//! become dicts, tensors and tuples. Every global that `torch.load(weights_only=True)` would
//! refuse is recorded in [`Pickle::unsafe_globals`] with why: the judgement is an allowlist
//! ([`weights_only_allowed`], torch 2.15's `_get_allowed_globals`), and names known to run
//! code ([`unsafe_reason`]) say so.
//!
//! Every resource is bounded by [`Limits`]: opcodes, nodes, memo entries, mark depth and
//! stack size, so a hostile pickle costs at most a bounded amount of time and memory.

use std::collections::HashMap;

/// Index of a node in [`Pickle::nodes`].
pub type Id = usize;

/// Bounds on what one pickle may cost.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Opcodes executed.
    pub max_ops: u64,
    /// Nodes created (values, containers, calls).
    pub max_nodes: usize,
    /// Distinct memo slots.
    pub max_memo: usize,
    /// Open marks at once (container nesting).
    pub max_marks: usize,
    /// Values on the stack at once.
    pub max_stack: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_ops: 50_000_000,
            // A node is 56 bytes: a million keep the walk near 100 MiB at worst, and a
            // state dict needs about a dozen per tensor.
            max_nodes: 1_000_000,
            max_memo: 10_000_000,
            max_marks: 10_000,
            max_stack: 10_000_000,
        }
    }
}

/// A tensor rebuilt by `torch._utils._rebuild_tensor_v2` (never its data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRef {
    /// Storage class name (`FloatStorage`), or the dtype name where torch wrote one.
    pub storage_class: String,
    /// Storage key (`data/<key>` in a zip checkpoint).
    pub key: String,
    /// Elements in the whole storage, as the persistent id states.
    pub storage_numel: Option<u64>,
    /// Offset into the storage, in elements.
    pub offset: u64,
    /// Logical shape.
    pub shape: Vec<u64>,
}

/// One inert value.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// `None`.
    None,
    /// A boolean.
    Bool(bool),
    /// An integer that fits i64.
    Int(i64),
    /// An integer too large for i64 (only its byte length is kept).
    BigInt(usize),
    /// A float.
    Float(f64),
    /// A text string.
    Str(String),
    /// A byte string (only the length is kept).
    Bytes(usize),
    /// A tuple.
    Tuple(Vec<Id>),
    /// A list.
    List(Vec<Id>),
    /// A dict (insertion order).
    Dict(Vec<(Id, Id)>),
    /// A set or frozenset.
    Set(Vec<Id>),
    /// A global reference `module.name`, never imported.
    Global(String, String),
    /// A persistent id (`BINPERSID`), e.g. a torch storage.
    Persistent(Id),
    /// A call of `func` with `args` that was not executed; `state` is what `BUILD` set.
    Call {
        /// The callable (usually a [`Node::Global`]).
        func: Id,
        /// Its arguments.
        args: Id,
        /// State given by `BUILD`, if any.
        state: Option<Id>,
    },
    /// A torch tensor (boxed: it keeps every other node small).
    Tensor(Box<TensorRef>),
}

/// A global that can run code when the pickle is loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsafeGlobal {
    /// `module.name`.
    pub global: String,
    /// Byte offset of the opcode that named it.
    pub offset: usize,
    /// Why it is dangerous.
    pub why: &'static str,
    /// `true` when the global is known to run code ([`unsafe_reason`]); `false` when it is only
    /// outside the weights-only allowlist (a class of the user's, `TrainingArguments`, ...).
    pub known: bool,
}

/// A walked pickle.
#[derive(Debug)]
pub struct Pickle {
    /// Every node; [`Pickle::root`] is the pickled object.
    pub nodes: Vec<Node>,
    /// The object on the stack at `STOP`.
    pub root: Id,
    /// Byte offset just after `STOP` (the next pickle in a legacy torch file starts there).
    pub end: usize,
    /// Globals that reach for code execution.
    pub unsafe_globals: Vec<UnsafeGlobal>,
}

impl Pickle {
    /// The node with id `id`.
    pub fn node(&self, id: Id) -> &Node {
        &self.nodes[id]
    }

    /// The string at `id`, if it is one.
    pub fn str(&self, id: Id) -> Option<&str> {
        match &self.nodes[id] {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer at `id`, if it is one.
    pub fn int(&self, id: Id) -> Option<i64> {
        match &self.nodes[id] {
            Node::Int(i) => Some(*i),
            Node::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The items of a tuple or list at `id`.
    pub fn items(&self, id: Id) -> Option<&[Id]> {
        match &self.nodes[id] {
            Node::Tuple(v) | Node::List(v) => Some(v),
            _ => None,
        }
    }

    /// The global `module.name` at `id`, if it is one.
    pub fn global(&self, id: Id) -> Option<(&str, &str)> {
        match &self.nodes[id] {
            Node::Global(m, n) => Some((m, n)),
            _ => None,
        }
    }

    /// Looks up string key `key` in the dict at `id` (or in the `BUILD` state of a call).
    pub fn get(&self, id: Id, key: &str) -> Option<Id> {
        self.get_within(id, key, 0)
    }

    fn get_within(&self, id: Id, key: &str, depth: u32) -> Option<Id> {
        // A state may be the object itself (`BUILD` of its own reference): bounded depth.
        if depth > 4 {
            return None;
        }
        match &self.nodes[id] {
            Node::Dict(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| self.str(*k) == Some(key))
                .map(|(_, v)| *v),
            Node::Call { state: Some(s), .. } => self.get_within(*s, key, depth + 1),
            Node::Tuple(items) if items.len() == 2 => {
                // `BUILD` with `(state, slotstate)`.
                items
                    .iter()
                    .find_map(|i| self.get_within(*i, key, depth + 1))
            }
            _ => None,
        }
    }

    /// The class name of a call (`module.name`), if its callable is a global.
    pub fn class_of(&self, id: Id) -> Option<String> {
        match &self.nodes[id] {
            Node::Call { func, .. } => self.global(*func).map(|(m, n)| format!("{m}.{n}")),
            _ => None,
        }
    }
}

/// Why a pickle could not be walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleError {
    /// Byte offset of the opcode at fault.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for PickleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pickle offset {}: {}", self.offset, self.message)
    }
}

/// Walks one pickle that starts at `start` in `data`.
pub fn parse(data: &[u8], start: usize, limits: &Limits) -> Result<Pickle, PickleError> {
    Walker {
        data,
        pos: start,
        op_at: start,
        limits,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        memo_high: 0,
        unsafe_globals: Vec::new(),
    }
    .run()
}

struct Walker<'a> {
    data: &'a [u8],
    pos: usize,
    op_at: usize,
    limits: &'a Limits,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
    /// The highest node id in the memo: nodes above it are referred to only by the stack.
    memo_high: Id,
    unsafe_globals: Vec<UnsafeGlobal>,
}

/// Lists longer than this keep only their non-scalar items.
const LONG_LIST: usize = 4096;

type R<T> = Result<T, PickleError>;

impl<'a> Walker<'a> {
    fn err<T>(&self, message: impl Into<String>) -> R<T> {
        Err(PickleError {
            offset: self.op_at,
            message: message.into(),
        })
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = match self.pos.checked_add(n) {
            Some(end) if end <= self.data.len() => end,
            _ => return self.err(format!("truncated: needs {n} more bytes past the end")),
        };
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> R<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> R<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> R<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn len(&mut self, n: u64) -> R<usize> {
        match usize::try_from(n) {
            Ok(n) if n <= self.data.len() - self.pos => Ok(n),
            _ => self.err(format!("length {n} runs past the end of the data")),
        }
    }

    fn line(&mut self) -> R<&'a str> {
        let rest = &self.data[self.pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return self.err("unterminated text line");
        };
        self.pos += nl + 1;
        match std::str::from_utf8(&rest[..nl]) {
            Ok(s) => Ok(s),
            Err(_) => self.err("text line is not UTF-8"),
        }
    }

    fn text(&mut self, n: usize) -> R<String> {
        let b = self.take(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => self.err("string is not valid UTF-8"),
        }
    }

    fn new_node(&mut self, node: Node) -> R<Id> {
        if self.nodes.len() >= self.limits.max_nodes {
            return self.err(format!("more than {} values", self.limits.max_nodes));
        }
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    fn push(&mut self, node: Node) -> R<()> {
        let id = self.new_node(node)?;
        self.push_id(id)
    }

    fn push_id(&mut self, id: Id) -> R<()> {
        if self.stack.len() >= self.limits.max_stack {
            return self.err(format!("stack deeper than {}", self.limits.max_stack));
        }
        self.stack.push(id);
        Ok(())
    }

    fn pop(&mut self) -> R<Id> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("stack underflow");
        }
        match self.stack.pop() {
            Some(id) => Ok(id),
            None => self.err("stack underflow"),
        }
    }

    fn top(&self) -> R<Id> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.stack.last() {
            Some(&id) if self.stack.len() > floor => Ok(id),
            _ => self.err("stack underflow"),
        }
    }

    fn pop_mark(&mut self) -> R<Vec<Id>> {
        let Some(mark) = self.marks.pop() else {
            return self.err("no MARK to pop to");
        };
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn memo_put(&mut self, key: u64) -> R<()> {
        let id = self.top()?;
        if self.memo.len() >= self.limits.max_memo && !self.memo.contains_key(&key) {
            return self.err(format!("memo larger than {} entries", self.limits.max_memo));
        }
        self.memo.insert(key, id);
        self.memo_high = self.memo_high.max(id);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> R<()> {
        match self.memo.get(&key) {
            Some(&id) => self.push_id(id),
            None => self.err(format!("memo key {key} was never stored")),
        }
    }

    fn global(&mut self, module: String, name: String) -> R<()> {
        let judged = match unsafe_reason(&module, &name) {
            Some(why) => Some((why, true)),
            None if !weights_only_allowed(&module, &name) => Some((NOT_ALLOWED, false)),
            None => None,
        };
        if let Some((why, known)) = judged {
            self.unsafe_globals.push(UnsafeGlobal {
                global: format!("{module}.{name}"),
                offset: self.op_at,
                why,
                known,
            });
        }
        self.push(Node::Global(module, name))
    }

    fn append(&mut self, list: Id, items: Vec<Id>) -> R<()> {
        let long = match &self.nodes[list] {
            Node::List(v) | Node::Set(v) => v.len() + items.len() > LONG_LIST,
            _ => false,
        };
        let items = if long {
            self.drop_scalars(items)
        } else {
            items
        };
        match &mut self.nodes[list] {
            Node::List(v) | Node::Set(v) => {
                v.extend(items);
                Ok(())
            }
            // Appending to an opaque object (a custom list type): its items are not needed.
            Node::Call { .. } => Ok(()),
            _ => self.err("APPEND to a value that is not a list"),
        }
    }

    /// Items of a long list that are plain scalars are not kept (a flat list of millions of
    /// numbers holds no tensor), and their nodes are given back when nothing else can refer
    /// to them: the newest nodes, above every memoized one and not on the stack.
    fn drop_scalars(&mut self, items: Vec<Id>) -> Vec<Id> {
        let scalar = |n: &Node| {
            matches!(
                n,
                Node::None
                    | Node::Bool(_)
                    | Node::Int(_)
                    | Node::BigInt(_)
                    | Node::Float(_)
                    | Node::Str(_)
                    | Node::Bytes(_)
            )
        };
        let (kept, dropped): (Vec<Id>, Vec<Id>) =
            items.into_iter().partition(|&i| !scalar(&self.nodes[i]));
        if self.stack.len() <= 1024 {
            let floor = self
                .stack
                .iter()
                .copied()
                .chain(kept.iter().copied())
                .max()
                .unwrap_or(0)
                .max(self.memo_high);
            let mut dropped = dropped;
            dropped.sort_unstable();
            while let (Some(&last), Some(top)) = (dropped.last(), self.nodes.len().checked_sub(1)) {
                if last != top || last <= floor {
                    break;
                }
                self.nodes.pop();
                dropped.pop();
            }
        }
        kept
    }

    fn set_items(&mut self, dict: Id, items: Vec<Id>) -> R<()> {
        if !items.len().is_multiple_of(2) {
            return self.err("SETITEMS with an odd number of values");
        }
        match &mut self.nodes[dict] {
            Node::Dict(entries) => {
                entries.extend(items.chunks_exact(2).map(|c| (c[0], c[1])));
                Ok(())
            }
            Node::Call { .. } => Ok(()),
            _ => self.err("SETITEM on a value that is not a dict"),
        }
    }

    /// `REDUCE` and `NEWOBJ`: recognise state-dict constructors, keep everything else opaque.
    fn call(&mut self, func: Id, args: Id) -> R<()> {
        let node = self.construct(func, args, 0).unwrap_or(Node::Call {
            func,
            args,
            state: None,
        });
        self.push(node)
    }

    fn construct(&self, func: Id, args: Id, depth: u32) -> Option<Node> {
        let Node::Global(module, name) = &self.nodes[func] else {
            return None;
        };
        if depth > 4 {
            return None;
        }
        let items: &[Id] = match &self.nodes[args] {
            Node::Tuple(v) => v,
            _ => return None,
        };
        match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") | ("builtins" | "__builtin__", "dict")
                if items.is_empty() =>
            {
                Some(Node::Dict(Vec::new()))
            }
            ("torch", "Size") => match items.first().map(|i| &self.nodes[*i]) {
                Some(Node::Tuple(dims)) => Some(Node::Tuple(dims.clone())),
                _ => None,
            },
            ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor" | "_rebuild_tensor_v3") => {
                self.tensor(items).map(|t| Node::Tensor(Box::new(t)))
            }
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
                match items.first().map(|i| &self.nodes[*i]) {
                    Some(n @ Node::Tensor(_)) => Some(n.clone()),
                    _ => None,
                }
            }
            ("torch._tensor", "_rebuild_from_type_v2") => {
                // (func, type, args, state): the tensor is `func(*args)`.
                let inner_func = *items.first()?;
                let inner_args = *items.get(2)?;
                self.construct(inner_func, inner_args, depth + 1)
            }
            _ => None,
        }
    }

    fn tensor(&self, items: &[Id]) -> Option<TensorRef> {
        let storage = match &self.nodes[*items.first()?] {
            Node::Persistent(pid) => *pid,
            _ => return None,
        };
        let pid = match &self.nodes[storage] {
            Node::Tuple(v) => v,
            _ => return None,
        };
        // ('storage', <class>, key, location, numel[, view_metadata])
        if !matches!(pid.first().map(|i| &self.nodes[*i]), Some(Node::Str(s)) if s == "storage") {
            return None;
        }
        let storage_class = match pid.get(1).map(|i| &self.nodes[*i]) {
            Some(Node::Global(_, name)) => name.clone(),
            Some(Node::Call { func, .. }) => match &self.nodes[*func] {
                Node::Global(_, name) => name.clone(),
                _ => return None,
            },
            _ => return None,
        };
        let key = match pid.get(2).map(|i| &self.nodes[*i]) {
            Some(Node::Str(s)) => s.clone(),
            Some(Node::Int(i)) => i.to_string(),
            _ => return None,
        };
        let storage_numel = match pid.get(4).map(|i| &self.nodes[*i]) {
            Some(Node::Int(n)) => u64::try_from(*n).ok(),
            _ => None,
        };
        let offset = match items.get(1).map(|i| &self.nodes[*i]) {
            Some(Node::Int(n)) => u64::try_from(*n).ok()?,
            _ => return None,
        };
        let shape = match items.get(2).map(|i| &self.nodes[*i]) {
            Some(Node::Tuple(dims)) => dims
                .iter()
                .map(|d| match &self.nodes[*d] {
                    Node::Int(n) => u64::try_from(*n).ok(),
                    _ => None,
                })
                .collect::<Option<Vec<u64>>>()?,
            _ => return None,
        };
        Some(TensorRef {
            storage_class,
            key,
            storage_numel,
            offset,
            shape,
        })
    }

    fn run(mut self) -> R<Pickle> {
        let mut ops: u64 = 0;
        loop {
            ops += 1;
            if ops > self.limits.max_ops {
                return self.err(format!("more than {} opcodes", self.limits.max_ops));
            }
            self.op_at = self.pos;
            let op = self.u8()?;
            match op {
                // PROTO
                0x80 => {
                    let v = self.u8()?;
                    if v > 5 {
                        return self.err(format!("unsupported pickle protocol {v}"));
                    }
                }
                // FRAME: a length prefix only.
                0x95 => {
                    self.u64()?;
                }
                b'.' => {
                    let root = self.pop()?;
                    return Ok(Pickle {
                        nodes: self.nodes,
                        root,
                        end: self.pos,
                        unsafe_globals: self.unsafe_globals,
                    });
                }
                b'(' => {
                    if self.marks.len() >= self.limits.max_marks {
                        return self
                            .err(format!("more than {} nested MARKs", self.limits.max_marks));
                    }
                    self.marks.push(self.stack.len());
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let id = self.top()?;
                    self.push_id(id)?;
                }
                b'N' => self.push(Node::None)?,
                0x88 => self.push(Node::Bool(true))?,
                0x89 => self.push(Node::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Node::Int(i64::from(v)))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Node::Int(i64::from(v)))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Node::Int(i64::from(v)))?
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        u64::from(self.u8()?)
                    } else {
                        let n = self.u32()? as i32;
                        if n < 0 {
                            return self.err("LONG4 with a negative length");
                        }
                        n as u64
                    };
                    let n = self.len(n)?;
                    let bytes = self.take(n)?;
                    self.push(long(bytes))?
                }
                b'I' | b'L' => {
                    let line = self.line()?;
                    let t = line.trim_end_matches('L');
                    let node = match t {
                        "00" => Node::Bool(false),
                        "01" => Node::Bool(true),
                        _ => match t.parse::<i64>() {
                            Ok(v) => Node::Int(v),
                            Err(_) if t.bytes().all(|b| b.is_ascii_digit() || b == b'-') => {
                                Node::BigInt(t.len())
                            }
                            Err(_) => {
                                return self.err(format!("bad integer `{}`", t.escape_debug()));
                            }
                        },
                    };
                    self.push(node)?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Node::Float(f64::from_be_bytes(a)))?
                }
                b'F' => {
                    let line = self.line()?;
                    match line.trim().parse::<f64>() {
                        Ok(v) => self.push(Node::Float(v))?,
                        Err(_) => return self.err(format!("bad float `{}`", line.escape_debug())),
                    }
                }
                // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => u64::from(self.u32()?),
                        0x8c => u64::from(self.u8()?),
                        _ => self.u64()?,
                    };
                    let n = self.len(n)?;
                    let s = self.text(n)?;
                    self.push(Node::Str(s))?
                }
                b'V' => {
                    let s = self.line()?.to_owned();
                    self.push(Node::Str(s))?
                }
                b'S' => {
                    let line = self.line()?;
                    let s = line.trim().trim_matches(['\'', '"']).to_owned();
                    self.push(Node::Str(s))?
                }
                // BINSTRING, SHORT_BINSTRING: Python 2 str; keep as text when it is UTF-8.
                b'T' | b'U' => {
                    let n = if op == b'T' {
                        u64::from(self.u32()?)
                    } else {
                        u64::from(self.u8()?)
                    };
                    let n = self.len(n)?;
                    let b = self.take(n)?;
                    match std::str::from_utf8(b) {
                        Ok(s) => self.push(Node::Str(s.to_owned()))?,
                        Err(_) => self.push(Node::Bytes(n))?,
                    }
                }
                // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                b'B' | b'C' | 0x8e | 0x96 => {
                    let n = match op {
                        b'B' => u64::from(self.u32()?),
                        b'C' => u64::from(self.u8()?),
                        _ => self.u64()?,
                    };
                    let n = self.len(n)?;
                    self.take(n)?;
                    self.push(Node::Bytes(n))?
                }
                // NEXT_BUFFER, READONLY_BUFFER: out-of-band buffers are not available.
                0x97 => self.push(Node::Bytes(0))?,
                0x98 => {}
                b')' => self.push(Node::Tuple(Vec::new()))?,
                b']' => self.push(Node::List(Vec::new()))?,
                b'}' => self.push(Node::Dict(Vec::new()))?,
                0x8f => self.push(Node::Set(Vec::new()))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items))?
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items))?
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if !items.len().is_multiple_of(2) {
                        return self.err("DICT with an odd number of values");
                    }
                    let entries = items.chunks_exact(2).map(|c| (c[0], c[1])).collect();
                    self.push(Node::Dict(entries))?
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Node::Set(items))?
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Node::Tuple(items))?
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.append(list, vec![item])?
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.append(list, items)?
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top()?;
                    self.set_items(dict, vec![key, value])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let dict = self.top()?;
                    self.set_items(dict, items)?
                }
                // PUT, BINPUT, LONG_BINPUT, MEMOIZE
                b'p' => {
                    let line = self.line()?;
                    match line.parse::<u64>() {
                        Ok(k) => self.memo_put(k)?,
                        Err(_) => {
                            return self.err(format!("bad memo key `{}`", line.escape_debug()));
                        }
                    }
                }
                b'q' => {
                    let k = u64::from(self.u8()?);
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = u64::from(self.u32()?);
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?
                }
                // GET, BINGET, LONG_BINGET
                b'g' => {
                    let line = self.line()?;
                    match line.parse::<u64>() {
                        Ok(k) => self.memo_get(k)?,
                        Err(_) => {
                            return self.err(format!("bad memo key `{}`", line.escape_debug()));
                        }
                    }
                }
                b'h' => {
                    let k = u64::from(self.u8()?);
                    self.memo_get(k)?
                }
                b'j' => {
                    let k = u64::from(self.u32()?);
                    self.memo_get(k)?
                }
                b'c' => {
                    let module = self.line()?.to_owned();
                    let name = self.line()?.to_owned();
                    self.global(module, name)?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Node::Str(m), Node::Str(n)) = (&self.nodes[module], &self.nodes[name])
                    else {
                        return self.err("STACK_GLOBAL with a module or name that is not a string");
                    };
                    let (m, n) = (m.clone(), n.clone());
                    self.global(m, n)?
                }
                // EXT1, EXT2, EXT4: the extension registry is not available.
                0x82..=0x84 => {
                    let code = match op {
                        0x82 => u64::from(self.u8()?),
                        0x83 => u64::from(self.u16()?),
                        _ => u64::from(self.u32()?),
                    };
                    self.push(Node::Global("copyreg.extension".into(), code.to_string()))?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.push(Node::Persistent(pid))?
                }
                b'P' => {
                    let s = self.line()?.to_owned();
                    let pid = self.new_node(Node::Str(s))?;
                    self.push(Node::Persistent(pid))?
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    self.call(func, args)?
                }
                // NEWOBJ_EX: cls, args, kwargs
                0x92 => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let func = self.pop()?;
                    self.call(func, args)?
                }
                // INST: module and name inline, arguments since the mark.
                b'i' => {
                    let module = self.line()?.to_owned();
                    let name = self.line()?.to_owned();
                    let items = self.pop_mark()?;
                    self.global(module, name)?;
                    let func = self.pop()?;
                    let args = self.new_node(Node::Tuple(items))?;
                    self.call(func, args)?
                }
                // OBJ: class and arguments since the mark.
                b'o' => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return self.err("OBJ without a class");
                    }
                    let func = items.remove(0);
                    let args = self.new_node(Node::Tuple(items))?;
                    self.call(func, args)?
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    // BUILD on a dict or tensor (OrderedDict `_metadata`): nothing to keep.
                    if let Node::Call { state: s, .. } = &mut self.nodes[obj] {
                        *s = Some(state);
                    }
                }
                _ => return self.err(format!("unknown opcode 0x{op:02x}")),
            }
        }
    }
}

fn long(bytes: &[u8]) -> Node {
    if bytes.is_empty() {
        return Node::Int(0);
    }
    if bytes.len() > 8 {
        return Node::BigInt(bytes.len());
    }
    let negative = bytes[bytes.len() - 1] & 0x80 != 0;
    let mut a = if negative { [0xffu8; 8] } else { [0u8; 8] };
    a[..bytes.len()].copy_from_slice(bytes);
    Node::Int(i64::from_le_bytes(a))
}

/// Why a global outside the allowlist is unsafe when nothing more specific is known.
pub const NOT_ALLOWED: &str = "not in torch.load(weights_only=True)'s allowlist: loading imports \
                               it and runs its code";

/// Whether `torch.load(weights_only=True)` accepts global `module.name`: the allowlist of
/// torch 2.15 (`torch/_weights_only_unpickler.py`, `_get_allowed_globals`, with the protocol-2
/// name mapping `__builtin__` → `builtins`):
/// - `collections.OrderedDict`, `collections.Counter`, `torch.nn.parameter.Parameter`,
///   `torch.serialization._get_layout`, `torch.Size`, `torch.Tensor`, `torch.device`,
///   `_codecs.encode`, `builtins.bytearray`, `builtins.set`, `builtins.complex`;
/// - dtypes (`torch.float32`, `torch.bfloat16`, `torch.uint1`…`torch.uint64`, …) and the
///   quantization schemes (`torch.per_tensor_affine`, …);
/// - tensor and storage classes (`torch.FloatStorage`, `torch.cuda.HalfTensor`,
///   `torch.sparse.FloatTensor`, `torch.storage.TypedStorage`, `torch.storage.UntypedStorage`);
/// - the rebuild functions `torch._utils._rebuild_{tensor,tensor_v2,tensor_v3,parameter,
///   parameter_with_state,qtensor,sparse_tensor,meta_tensor_no_storage,wrapper_subclass,
///   device_tensor_from_numpy,device_tensor_from_cpu_tensor}` and
///   `torch._tensor._rebuild_from_type_v2`.
///
/// Everything else (a user's `nn.Module` class, `TrainingArguments`, numpy) is refused by
/// torch unless the loader adds it with `add_safe_globals`.
pub fn weights_only_allowed(module: &str, name: &str) -> bool {
    let module = match module {
        "__builtin__" => "builtins",
        m => m,
    };
    const PREFIXES: &[&str] = &[
        "BFloat16",
        "Bool",
        "Byte",
        "Char",
        "ComplexDouble",
        "ComplexFloat",
        "Double",
        "Float",
        "Half",
        "Int",
        "Long",
        "Short",
    ];
    const QSTORAGE: &[&str] = &["QInt32", "QInt8", "QUInt2x4", "QUInt4x2", "QUInt8"];
    const DTYPES: &[&str] = &[
        "bool",
        "uint8",
        "int8",
        "int16",
        "int32",
        "int64",
        "float16",
        "float32",
        "float64",
        "bfloat16",
        "complex32",
        "complex64",
        "complex128",
        "qint8",
        "quint8",
        "qint32",
        "quint4x2",
        "quint2x4",
        "bits1x8",
        "bits2x4",
        "bits4x2",
        "bits8",
        "bits16",
        "float8_e5m2",
        "float8_e4m3fn",
        "float8_e5m2fnuz",
        "float8_e4m3fnuz",
        "float8_e8m0fnu",
        "float4_e2m1fn_x2",
        "bcomplex32",
        "uint16",
        "uint32",
        "uint64",
        "uint1",
        "uint2",
        "uint3",
        "uint4",
        "uint5",
        "uint6",
        "uint7",
        "int1",
        "int2",
        "int3",
        "int4",
        "int5",
        "int6",
        "int7",
        "per_tensor_affine",
        "per_tensor_symmetric",
        "per_channel_affine",
        "per_channel_symmetric",
        "per_channel_affine_float_qparams",
    ];
    let class_of = |suffix: &str, extra: &[&str]| {
        name.strip_suffix(suffix)
            .is_some_and(|p| PREFIXES.contains(&p) || extra.contains(&p))
    };
    match module {
        "collections" => matches!(name, "OrderedDict" | "Counter"),
        "builtins" => matches!(name, "bytearray" | "set" | "complex"),
        "_codecs" => name == "encode",
        "torch.nn.parameter" => name == "Parameter",
        "torch.serialization" => name == "_get_layout",
        "torch.storage" => matches!(name, "TypedStorage" | "UntypedStorage"),
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch._utils" => matches!(
            name,
            "_rebuild_parameter"
                | "_rebuild_parameter_with_state"
                | "_rebuild_qtensor"
                | "_rebuild_tensor"
                | "_rebuild_tensor_v2"
                | "_rebuild_tensor_v3"
                | "_rebuild_sparse_tensor"
                | "_rebuild_meta_tensor_no_storage"
                | "_rebuild_wrapper_subclass"
                | "_rebuild_device_tensor_from_numpy"
                | "_rebuild_device_tensor_from_cpu_tensor"
        ),
        "torch" => {
            matches!(name, "Size" | "Tensor" | "device")
                || DTYPES.contains(&name)
                || class_of("Storage", QSTORAGE)
                || class_of("Tensor", &[])
        }
        "torch.cuda" => {
            class_of("Storage", &[]) || (class_of("Tensor", &[]) && !name.starts_with("Complex"))
        }
        "torch.sparse" | "torch.cuda.sparse" => {
            class_of("Tensor", &[]) && !name.starts_with("Complex") && name != "BoolTensor"
        }
        _ => false,
    }
}

/// Why `module.name` is known to be dangerous to load, or `None` if it is not known to be
/// (it may still be outside the weights-only allowlist: [`weights_only_allowed`]).
pub fn unsafe_reason(module: &str, name: &str) -> Option<&'static str> {
    let top = module.split('.').next().unwrap_or(module);
    match top {
        "os" | "posix" | "nt" | "posixpath" | "ntpath" => {
            return Some("operating-system call (can run commands or touch files)");
        }
        "subprocess" | "pty" | "commands" | "popen2" => return Some("runs a shell command"),
        "socket" | "http" | "urllib" | "urllib2" | "requests" | "ftplib" | "smtplib"
        | "telnetlib" | "webbrowser" => return Some("opens a network connection"),
        "shutil" | "tempfile" | "glob" | "pathlib" | "io" | "_io" => {
            return Some("reads, writes or deletes files");
        }
        "sys" | "runpy" | "importlib" | "imp" | "pkgutil" | "code" | "codeop" | "ctypes"
        | "_ctypes" | "cffi" | "marshal" | "types" | "gc" | "inspect" | "signal"
        | "multiprocessing" | "threading" | "_thread" | "asyncio" | "pdb" | "bdb" | "timeit"
        | "profile" | "cProfile" | "trace" | "pip" | "setuptools" | "distutils" => {
            return Some("loads or runs arbitrary code");
        }
        "pickle" | "_pickle" | "cPickle" | "dill" | "cloudpickle" | "joblib" | "shelve" => {
            return Some("unpickles nested data (can run code)");
        }
        _ => {}
    }
    match (module, name) {
        (
            "builtins" | "__builtin__",
            "eval" | "exec" | "execfile" | "compile" | "__import__" | "open" | "file" | "getattr"
            | "setattr" | "delattr" | "globals" | "locals" | "vars" | "input" | "raw_input"
            | "breakpoint" | "exit" | "quit" | "apply" | "reload" | "help" | "memoryview" | "type"
            | "object" | "super" | "classmethod" | "staticmethod" | "property",
        ) => Some("builtin that evaluates code or reaches attributes"),
        ("operator", "attrgetter" | "methodcaller" | "itemgetter" | "call")
        | ("functools", "partial" | "reduce")
        | ("copyreg" | "copy_reg", "_reconstructor" | "__newobj__")
        | ("torch.serialization", "load" | "_load")
        | ("torch", "load")
        | ("torch._C", _)
        | ("torch.hub", _)
        | ("torch.jit", _)
        | ("numpy", "load" | "loads" | "fromfile")
        | ("numpy.testing._private.utils", _)
        | ("numpy.lib.npyio", _) => Some("reaches for functions that can run arbitrary code"),
        ("copyreg.extension", _) => Some("uses the copyreg extension registry (opaque callable)"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(data: &[u8]) -> Result<Pickle, PickleError> {
        parse(data, 0, &Limits::default())
    }

    #[test]
    fn reads_an_ordered_dict_of_tensors() {
        // torch.save({"w": torch.zeros(2, 3)}) protocol 2, by hand.
        let mut p = vec![0x80, 2];
        p.extend(b"ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00w");
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storage");
        p.extend(b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ");
        p.extend(b"K\x00K\x02K\x03\x86K\x03K\x01\x86\x89h\x00)Rtq\x03Rq\x04u.");
        let pk = walk(&p).unwrap();
        let w = pk.get(pk.root, "w").unwrap();
        assert_eq!(
            pk.node(w),
            &Node::Tensor(Box::new(TensorRef {
                storage_class: "FloatStorage".into(),
                key: "0".into(),
                storage_numel: Some(6),
                offset: 0,
                shape: vec![2, 3],
            }))
        );
        assert!(pk.unsafe_globals.is_empty());
    }

    #[test]
    fn os_system_is_reported_never_run() {
        // The classic: cos\nsystem\n(S'echo pwned'\ntR.
        let pk = walk(b"cos\nsystem\n(S'touch /tmp/cardfill-pwned'\ntR.").unwrap();
        assert_eq!(pk.unsafe_globals.len(), 1);
        assert_eq!(pk.unsafe_globals[0].global, "os.system");
        assert_eq!(pk.unsafe_globals[0].offset, 0);
        assert!(matches!(pk.node(pk.root), Node::Call { .. }));
        assert!(!std::path::Path::new("/tmp/cardfill-pwned").exists());
        let pk = walk(b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.").unwrap();
        assert_eq!(pk.unsafe_globals[0].global, "builtins.eval");
    }

    #[test]
    fn hostile_shapes_are_errors_with_offsets() {
        let e = walk(b"\x80\x02}q\x00h\x07.").unwrap_err();
        assert_eq!(e.offset, 5);
        assert!(e.message.contains("memo key 7"), "{e}");
        let e = walk(b"\x80\x02X\xff\xff\xff\xffabc").unwrap_err();
        assert!(e.message.contains("runs past the end"), "{e}");
        assert!(walk(b"\x80\x02").unwrap_err().message.contains("truncated"));
        assert!(walk(b"u.").is_err());
        assert!(
            walk(b"\xff")
                .unwrap_err()
                .message
                .contains("unknown opcode")
        );
        // A billion-laughs style pickle: references, not copies, and bounded opcodes.
        let mut p = b"]q\x00".to_vec();
        for _ in 0..10_000 {
            p.extend(b"h\x00h\x00\x86");
        }
        p.push(b'.');
        let pk = walk(&p).unwrap();
        assert!(pk.nodes.len() < 20_000);
        let limits = Limits {
            max_ops: 100,
            ..Limits::default()
        };
        assert!(
            parse(&p, 0, &limits)
                .unwrap_err()
                .message
                .contains("opcodes")
        );
        // An object whose BUILD state is itself, and nested tensor-subclass rebuilds.
        let pk = walk(b"cx\ny\n)R2b.").unwrap();
        assert_eq!(pk.get(pk.root, "state_dict"), None);
        let mut p = b"ctorch._tensor\n_rebuild_from_type_v2\nq\x00h\x00NN\x87q\x010".to_vec();
        for _ in 0..100_000 {
            p.extend(b"h\x00Nh\x01\x87q\x010");
        }
        p.extend(b"h\x00h\x01R.");
        assert!(walk(&p).is_ok());
        let deep = vec![b'('; 20_000];
        assert!(walk(&deep).unwrap_err().message.contains("nested MARKs"));
    }
}
