//! The tokenizer data a llama GGUF carries (`tokenizer.ggml.*`): tokens, BPE merges, token
//! types, special ids, whether to add BOS, the pre-tokenizer's name and the chat template.
//! `model::llama::tokenize` builds the tokenizer from it.

use crate::error::{LabError, Result};
use crate::formats::gguf::{Gguf, Value};

/// llama.cpp's token type for control tokens (`<|im_start|>`...): matched as special.
pub const TOKEN_TYPE_CONTROL: u32 = 3;
/// llama.cpp's token type for user-defined tokens, also matched whole.
pub const TOKEN_TYPE_USER_DEFINED: u32 = 4;

/// Vocabulary and tokenizer settings from GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocab {
    /// `tokenizer.ggml.model`: "gpt2" for byte-level BPE.
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer (e.g. "smollm", "llama-bpe").
    pub pre: String,
    /// Token strings, by id.
    pub tokens: Vec<String>,
    /// Token types, by id (1 normal, 3 control, ...).
    pub types: Vec<u32>,
    /// BPE merges, "a b" each.
    pub merges: Vec<String>,
    /// Beginning-of-sequence id.
    pub bos: Option<u32>,
    /// End-of-sequence id.
    pub eos: Option<u32>,
    /// Whether a BOS token starts every prompt.
    pub add_bos: bool,
    /// The Jinja chat template, if any.
    pub chat_template: Option<String>,
}

impl Vocab {
    /// Reads the vocabulary of `g`.
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let err = |message: String| LabError::Model {
            path: g.path.clone(),
            message,
        };
        let strings = |key: &str| -> Result<Vec<String>> {
            match g.get(key) {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| match v {
                        Value::Str(s) => Ok(s.clone()),
                        v => Err(err(format!("{key} holds {}", v.display()))),
                    })
                    .collect(),
                Some(v) => Err(err(format!("{key} is {}", v.display()))),
                None => Err(err(format!("missing metadata key {key}"))),
            }
        };
        let string = |key: &str| match g.get(key) {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        };
        let id = |key: &str| match g.get(key) {
            Some(Value::U64(v)) => Some(*v as u32),
            Some(Value::I64(v)) if *v >= 0 => Some(*v as u32),
            _ => None,
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let types = match g.get("tokenizer.ggml.token_type") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::I64(t) => *t as u32,
                    Value::U64(t) => *t as u32,
                    _ => 1,
                })
                .collect(),
            _ => vec![1; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(err(format!(
                "{} token types for {} tokens",
                types.len(),
                tokens.len()
            )));
        }
        let model = string("tokenizer.ggml.model")
            .ok_or_else(|| err("missing metadata key tokenizer.ggml.model".into()))?;
        let v = Vocab {
            merges: if model == "gpt2" {
                strings("tokenizer.ggml.merges")?
            } else {
                Vec::new()
            },
            model,
            pre: string("tokenizer.ggml.pre").unwrap_or_else(|| "default".into()),
            bos: id("tokenizer.ggml.bos_token_id"),
            eos: id("tokenizer.ggml.eos_token_id"),
            add_bos: matches!(
                g.get("tokenizer.ggml.add_bos_token"),
                Some(Value::Bool(true))
            ),
            chat_template: string("tokenizer.chat_template"),
            tokens,
            types,
        };
        for (what, id) in [("bos", v.bos), ("eos", v.eos)] {
            if id.is_some_and(|i| i as usize >= v.tokens.len()) {
                return Err(err(format!("{what} id {id:?} is past the vocabulary")));
            }
        }
        Ok(v)
    }
}
