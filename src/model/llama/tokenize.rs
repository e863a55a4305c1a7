//! Text to token ids from a llama GGUF's own vocabulary (`formats::llama::vocab`), through
//! the `tokenizers` crate: byte-level BPE with the pre-tokenization llama.cpp uses for the
//! file's `tokenizer.ggml.pre`, control tokens (`<|im_start|>`, ...) matched whole, BOS
//! added only where the file says so; and the chat template (ChatML) applied to a prompt.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::AddedToken;

use crate::error::{LabError, Result};
use crate::formats::llama::vocab::{Vocab, TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED};

/// llama.cpp pre-tokenizers that split every digit alone, then apply GPT-2's regex
/// (`llama-vocab.cpp`: starcoder, refact, command-r, smollm, codeshell, exaone, minerva).
const DIGITS_THEN_GPT2: [&str; 7] = [
    "smollm",
    "starcoder",
    "refact",
    "command-r",
    "codeshell",
    "exaone",
    "minerva",
];

/// A llama GGUF's tokenizer.
pub struct LlamaTokenizer {
    inner: tokenizers::Tokenizer,
    /// BOS id, prepended when `add_bos`.
    pub bos: Option<u32>,
    /// EOS id: generation stops there.
    pub eos: Option<u32>,
    /// Whether prompts start with BOS.
    pub add_bos: bool,
    chat_template: Option<String>,
}

fn tok_err(what: &str, e: impl std::fmt::Display) -> LabError {
    LabError::InvalidArgument(format!("tokenizer: {what}: {e}"))
}

impl LlamaTokenizer {
    /// Builds the tokenizer of `v`; refuses vocabularies and pre-tokenizers it does not
    /// implement, naming them.
    pub fn new(v: &Vocab) -> Result<Self> {
        if v.model != "gpt2" {
            return Err(LabError::InvalidArgument(format!(
                "tokenizer model {:?} is not supported (only byte-level BPE, \"gpt2\")",
                v.model
            )));
        }
        let pre: PreTokenizerWrapper = if DIGITS_THEN_GPT2.contains(&v.pre.as_str()) {
            Sequence::new(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, false, true).into(),
            ])
            .into()
        } else if v.pre == "gpt2" || v.pre == "default" {
            ByteLevel::new(false, false, true).into()
        } else {
            return Err(LabError::InvalidArgument(format!(
                "pre-tokenizer {:?} is not supported (supported: gpt2, {})",
                v.pre,
                DIGITS_THEN_GPT2.join(", ")
            )));
        };
        let vocab: tokenizers::models::bpe::Vocab = v
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let merges = v
            .merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| tok_err("merge without a space", m))
            })
            .collect::<Result<Vec<_>>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| tok_err("BPE", e))?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let special: Vec<AddedToken> = v
            .tokens
            .iter()
            .zip(&v.types)
            .filter(|(_, t)| **t == TOKEN_TYPE_CONTROL || **t == TOKEN_TYPE_USER_DEFINED)
            .map(|(s, _)| AddedToken::from(s.clone(), true))
            .collect();
        inner.add_special_tokens(&special);
        Ok(LlamaTokenizer {
            inner,
            bos: v.bos,
            eos: v.eos,
            add_bos: v.add_bos,
            chat_template: v.chat_template.clone(),
        })
    }

    /// Token ids of `text` (BOS first where the model adds one); special tokens written in
    /// the text are recognised as such, as llama.cpp does.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| tok_err("encode", e))?;
        let mut ids = Vec::with_capacity(enc.get_ids().len() + 1);
        if self.add_bos {
            ids.extend(self.bos);
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// The text of `ids` (special tokens kept, so a chat turn reads as generated).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| tok_err("decode", e))
    }

    /// `prompt` as the user's turn in the model's chat template, ready for the assistant's
    /// reply. ChatML (`<|im_start|>role\n...<|im_end|>\n`) is recognised, with the
    /// template's default system message; other templates are refused, naming the problem.
    pub fn chat(&self, prompt: &str) -> Result<String> {
        let t = self.chat_template.as_deref().ok_or_else(|| {
            LabError::InvalidArgument("--chat: the model has no chat template".into())
        })?;
        if !t.contains("<|im_start|>") {
            return Err(LabError::InvalidArgument(
                "--chat: only ChatML templates (<|im_start|>) are supported; give the \
                 formatted prompt instead"
                    .into(),
            ));
        }
        let open = "<|im_start|>system\n";
        let system = t.find(open).and_then(|i| {
            let rest = &t[i + open.len()..];
            rest.find("<|im_end|>").map(|j| rest[..j].to_string())
        });
        let mut s = String::new();
        if let Some(sys) = system {
            s.push_str(&format!("{open}{sys}<|im_end|>\n"));
        }
        s.push_str(&format!(
            "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
        ));
        Ok(s)
    }
}
