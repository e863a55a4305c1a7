//! The pruned encoder's accuracy (issue 23): all-MiniLM-L6-v2's linears pruned by each
//! method to each pattern (`model::bert::prune`, calibrated on
//! `model::bert::calibrate::CALIBRATION`), stored at each precision as a sparse run would,
//! and the CPU twin holding exactly those values embeds the accuracy sentences
//! ([`SENTENCES`]); cosine to the dense f32 twin's embeddings, minimum and mean.

use serde::Serialize;

use crate::bench::infer::{cosine, SENTENCES};
use crate::error::Result;
use crate::formats::bert::BertWeights;
use crate::formats::sparse::Sparsity;
use crate::formats::weights::{WeightFormat, Weights};
use crate::model::bert::calibrate::CALIBRATION;
use crate::model::bert::prune::prune_bert;
use crate::model::bert::tokenize::Tokenizer;
use crate::prune::Method;
use crate::reference::bert;

/// One row: a precision at a pattern, pruned by a method.
#[derive(Debug, Clone, Serialize)]
pub struct EncoderPruneRow {
    /// Storage format of the linears.
    pub precision: String,
    /// `dense`, `N:M` or `u<percent>`.
    pub sparsity: String,
    /// The method (None on dense rows).
    pub prune: Option<String>,
    /// Lowest cosine to the dense f32 twin over the sentences.
    pub min_cosine: Option<f64>,
    /// Mean cosine.
    pub mean_cosine: Option<f64>,
    /// Bytes of the linears as stored (N:M: compressed, masks included).
    pub weight_bytes: Option<u64>,
    /// Wall time of the pruning, s.
    pub prune_s: Option<f64>,
    /// Why the row did not run.
    pub skipped: Option<String>,
}

fn cosines(
    w: &BertWeights,
    reference: &[Vec<f32>],
    batch: &crate::formats::bert::Batch,
) -> Result<(f64, f64)> {
    let got = bert::forward(w, batch)?;
    let c: Vec<f64> = got
        .iter()
        .zip(reference)
        .map(|(a, b)| cosine(a, b))
        .collect();
    Ok((
        c.iter().copied().fold(f64::INFINITY, f64::min),
        c.iter().sum::<f64>() / c.len() as f64,
    ))
}

/// The dense linears of `w` as `format` stores them, decoded back; and their bytes.
fn dense_at(w: &BertWeights, format: WeightFormat) -> Result<(BertWeights, u64)> {
    let mut out = w.clone();
    let mut bytes = 0u64;
    for l in &mut out.layers {
        for lin in [&mut l.qkv, &mut l.out, &mut l.up, &mut l.down] {
            let d = Weights::encode(format, lin.n, lin.k, &lin.w)?;
            bytes += d.bytes.len() as u64;
            lin.w = d.dequantize_cols(lin.k);
        }
    }
    Ok((out, bytes))
}

/// Every row: a dense row per precision, then per method and pattern one per precision.
pub fn run(
    w: &BertWeights,
    tok: &Tokenizer,
    precisions: &[WeightFormat],
    sparsity: &[Sparsity],
    methods: &[Method],
) -> Result<Vec<EncoderPruneRow>> {
    let batch = tok.encode_batch(&SENTENCES)?.batch;
    let calibration = tok.encode_batch(&CALIBRATION)?.batch;
    let reference = bert::forward(w, &batch)?;
    let row = |format: WeightFormat, s: Sparsity, m: Option<Method>| EncoderPruneRow {
        precision: format.name().into(),
        sparsity: s.to_string(),
        prune: m.map(|m| m.name().into()),
        min_cosine: None,
        mean_cosine: None,
        weight_bytes: None,
        prune_s: None,
        skipped: None,
    };
    let mut rows = Vec::new();
    for &format in precisions {
        let mut r = row(format, Sparsity::Dense, None);
        match dense_at(w, format) {
            Ok((d, bytes)) => {
                let (min, mean) = cosines(&d, &reference, &batch)?;
                r.min_cosine = Some(min);
                r.mean_cosine = Some(mean);
                r.weight_bytes = Some(bytes);
            }
            Err(e) => r.skipped = Some(e.to_string()),
        }
        rows.push(r);
    }
    for &method in methods {
        for &s in sparsity.iter().filter(|s| **s != Sparsity::Dense) {
            let pruned = prune_bert(w, method, s, &calibration).map_err(|e| e.to_string());
            for &format in precisions {
                let mut r = row(format, s, Some(method));
                match &pruned {
                    Err(why) => r.skipped = Some(why.clone()),
                    Ok(p) => {
                        r.prune_s = Some(p.seconds);
                        match p.weights(w, format) {
                            Err(e) => r.skipped = Some(e.to_string()),
                            Ok((pw, bytes)) => {
                                let (min, mean) = cosines(&pw, &reference, &batch)?;
                                r.min_cosine = Some(min);
                                r.mean_cosine = Some(mean);
                                r.weight_bytes = Some(bytes);
                            }
                        }
                    }
                }
                rows.push(r);
            }
        }
    }
    Ok(rows)
}
