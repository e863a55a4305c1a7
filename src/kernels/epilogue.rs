//! What a matmul kernel does to each output before storing it: nothing, add a bias, or add
//! a bias then apply GELU (the linear layers of a transformer). Chosen per variant by
//! importing `shaders/shared/epilogue_*.wgsl` in the prefix.

use crate::gpu::pipeline::Binding;
use crate::shaders::Define;

/// The output epilogue of a matmul.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Epilogue {
    /// Store the product.
    #[default]
    None,
    /// Product + bias[col].
    Bias,
    /// GELU(product + bias[col]), exact (erf) GELU.
    BiasGelu,
}

impl Epilogue {
    /// Whether a bias buffer is bound (after the kernel's own bindings).
    pub fn has_bias(self) -> bool {
        self != Epilogue::None
    }

    /// Prefix defines; the bias goes to binding `bias_binding`.
    pub fn defines(self, bias_binding: u32) -> Vec<Define> {
        match self {
            Epilogue::None => vec![Define::Import("epilogue_none".into())],
            Epilogue::Bias => vec![
                Define::U32("BIAS_BINDING", bias_binding),
                Define::Import("epilogue_bias".into()),
            ],
            Epilogue::BiasGelu => vec![
                Define::U32("BIAS_BINDING", bias_binding),
                Define::Import("epilogue_bias_gelu".into()),
            ],
        }
    }

    /// The kernel's bindings followed by the bias binding, if any.
    pub fn bindings(self, kernel: &[Binding]) -> Vec<Binding> {
        let mut list = kernel.to_vec();
        if self.has_bias() {
            list.push(Binding::ReadOnly);
        }
        list
    }
}
