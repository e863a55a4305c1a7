//! The header a kernel file declares itself with: `// lab: key = value` comment lines, so
//! `wgpu-lab kernel FILE` needs no other argument (docs/kernel-lab.md):
//!
//! ```text
//! // lab: op = matmul_nt            which op (lab::contract::Op::NAMES)
//! // lab: precision = q4_0          the op's precision
//! // lab: tile = TM x WG_X*TN       rows x columns of C one workgroup writes
//! // lab: tune WG_X = 8, 16, 32     values `tune --kernel` may give an override constant
//! // lab: entry = main              the entry point (default `main`)
//! ```
//!
//! A tile side is a product of integers and `override` constants' names, evaluated with the
//! values the pipeline gets.

use std::collections::BTreeMap;

use serde::Serialize;

/// One side of a tile: a product of factors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product(pub Vec<Factor>);

/// A factor of a tile side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Factor {
    /// A literal.
    Num(u32),
    /// An `override` constant's name.
    Name(String),
}

impl Product {
    /// The value with `constants` (names to values); the first unknown name is the error.
    pub fn eval(&self, constants: &BTreeMap<String, f64>) -> std::result::Result<u64, String> {
        let mut v = 1u64;
        for f in &self.0 {
            let x = match f {
                Factor::Num(n) => *n as u64,
                Factor::Name(name) => match constants.get(name) {
                    Some(&x) if x >= 1.0 && x.fract() == 0.0 && x <= u32::MAX as f64 => x as u64,
                    Some(&x) => return Err(format!("{name} = {x} is not a positive integer")),
                    None => return Err(format!("{name} is not an override constant of the file")),
                },
            };
            v = v.saturating_mul(x);
        }
        Ok(v)
    }

    /// The names it uses.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|f| match f {
            Factor::Name(n) => Some(n.as_str()),
            Factor::Num(_) => None,
        })
    }
}

impl std::fmt::Display for Product {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|x| match x {
                Factor::Num(n) => n.to_string(),
                Factor::Name(s) => s.clone(),
            })
            .collect();
        write!(f, "{}", parts.join("*"))
    }
}

/// What a kernel file declares about itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Header {
    /// `op = ...`.
    pub op: Option<String>,
    /// `precision = ...`.
    pub precision: Option<String>,
    /// `tile = ROWS x COLS`.
    pub tile: Option<(Product, Product)>,
    /// `entry = ...` (None: `main`).
    pub entry: Option<String>,
    /// `tune NAME = v, ...`, in file order.
    pub tune: Vec<(String, Vec<f64>)>,
}

/// Parses the `// lab:` lines of `source`. Errors name the line (1-based) and say what was
/// expected.
pub fn parse(source: &str) -> std::result::Result<Header, String> {
    let mut h = Header::default();
    for (i, line) in source.lines().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("// lab:") else {
            continue;
        };
        let at = |msg: String| format!("line {}: {msg}", i + 1);
        let rest = rest.trim();
        if let Some(t) = rest.strip_prefix("tune ") {
            let (name, values) = t
                .split_once('=')
                .ok_or_else(|| at(format!("`{rest}`: expected `tune NAME = v1, v2, ...`")))?;
            let name = name.trim();
            if !is_ident(name) {
                return Err(at(format!("`{name}` is not a WGSL identifier")));
            }
            let values = values
                .split(',')
                .map(|v| v.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
                .collect::<Option<Vec<f64>>>()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| at(format!("`{rest}`: the values must be numbers")))?;
            if h.tune.iter().any(|(n, _)| n == name) {
                return Err(at(format!("`tune {name}` is declared twice")));
            }
            h.tune.push((name.to_string(), values));
            continue;
        }
        let (key, value) = rest
            .split_once('=')
            .ok_or_else(|| at(format!("`{rest}`: expected `key = value`")))?;
        let (key, value) = (key.trim(), value.trim());
        let slot = match key {
            "op" => &mut h.op,
            "precision" => &mut h.precision,
            "entry" => &mut h.entry,
            "tile" => {
                h.tile = Some(parse_tile(value).map_err(at)?);
                continue;
            }
            _ => {
                return Err(at(format!(
                    "unknown key `{key}` (expected op, precision, tile, entry or `tune NAME`)"
                )))
            }
        };
        if value.is_empty() {
            return Err(at(format!("`{key}` has no value")));
        }
        *slot = Some(value.to_string());
    }
    Ok(h)
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn parse_tile(value: &str) -> std::result::Result<(Product, Product), String> {
    let side = |s: &str| -> std::result::Result<Product, String> {
        let factors = s
            .split('*')
            .map(|f| {
                let f = f.trim();
                if let Ok(n) = f.parse::<u32>() {
                    Ok(Factor::Num(n))
                } else if is_ident(f) {
                    Ok(Factor::Name(f.to_string()))
                } else {
                    Err(format!(
                        "tile `{value}`: `{f}` is neither a number nor a name"
                    ))
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Product(factors))
    };
    let (r, c) = value
        .split_once(" x ")
        .ok_or_else(|| format!("tile `{value}`: expected `ROWS x COLS`, e.g. `4 x WG_X*4`"))?;
    Ok((side(r)?, side(c)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_header_parses() {
        let h = parse(
            "// lab: op = matmul_nt\n// lab: precision = q4_0\n\
             // lab: tile = TM x WG_X*4\n// lab: tune WG_X = 8, 16\nfn main() {}\n",
        )
        .unwrap();
        assert_eq!(h.op.as_deref(), Some("matmul_nt"));
        assert_eq!(h.precision.as_deref(), Some("q4_0"));
        assert_eq!(h.tune, vec![("WG_X".to_string(), vec![8.0, 16.0])]);
        let (r, c) = h.tile.unwrap();
        let k = BTreeMap::from([("TM".to_string(), 2.0), ("WG_X".to_string(), 16.0)]);
        assert_eq!((r.eval(&k).unwrap(), c.eval(&k).unwrap()), (2, 64));
        assert!(c.eval(&BTreeMap::new()).unwrap_err().contains("WG_X"));
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(parse("\n// lab: color = red")
            .unwrap_err()
            .starts_with("line 2"));
        assert!(parse("// lab: tile = 4 by 4")
            .unwrap_err()
            .contains("ROWS x COLS"));
        assert!(parse("// lab: tune X = a, b")
            .unwrap_err()
            .contains("numbers"));
        assert!(parse("// lab: op =").unwrap_err().contains("no value"));
    }
}
