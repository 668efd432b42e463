//! The two-tower model as a safetensors file: every weight by name, the user and item vectors,
//! the input bags (as u32/f32 tensors) and the readable feature names in the metadata.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use reco_core::{Error, Result};

use super::{towers, TwoTower, TwoTowerParams};
use crate::bags::Bags;
use crate::file_err;
use crate::nn::Store;

impl TwoTower {
    /// The weights, vectors and inputs as a safetensors file, the parameters in its metadata.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let dev = Device::Cpu;
        let err = file_err("saving");
        let mut t: Vec<(String, Tensor)> = self.weights.clone();
        let n_items = self.items.len() / self.dim.max(1);
        t.push((
            "user_vectors".into(),
            Tensor::from_slice(&self.users, (self.n_users(), self.dim), &dev).map_err(&err)?,
        ));
        t.push((
            "item_vectors".into(),
            Tensor::from_slice(&self.items, (n_items, self.dim), &dev).map_err(&err)?,
        ));
        t.push((
            "rating_head".into(),
            Tensor::new(&self.head, &dev).map_err(&err)?,
        ));
        for (name, bags) in [
            ("user_rows", Some(&self.user_rows)),
            ("item_rows", Some(&self.item_rows)),
            ("recent", self.recent.as_ref()),
        ] {
            if let Some(b) = bags {
                t.extend(bag_tensors(name, b)?);
            }
        }
        let mut meta = HashMap::new();
        let names = serde_json::json!({ "user": self.user_names, "item": self.item_names,
            "user_tokens": self.user_rows.n_tokens, "item_tokens": self.item_rows.n_tokens, "recent_tokens": self.recent.as_ref().map(|r| r.n_tokens) });
        meta.insert("names".to_string(), names.to_string());
        meta.insert(
            "spec".to_string(),
            reco_models::Model::spec(self).to_value()?.to_string(),
        );
        safetensors::serialize(t, Some(meta))
            .map_err(|e| Error::artifact("model.safetensors", format!("cannot be written: {e}")))
    }

    /// Reads a model written by [`TwoTower::to_safetensors`].
    pub fn from_safetensors(p: &TwoTowerParams, bytes: &[u8]) -> Result<TwoTower> {
        let bad =
            |m: String| Error::artifact("model.safetensors", format!("two-tower model file: {m}"));
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let info = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("names"))
            .ok_or_else(|| bad("no metadata".into()))?;
        let info: serde_json::Value = serde_json::from_str(info).map_err(|e| bad(e.to_string()))?;
        let strings = |k: &str| -> Result<Vec<String>> {
            serde_json::from_value(info[k].clone()).map_err(|e| bad(format!("{k}: {e}")))
        };
        let count = |k: &str| info[k].as_u64().map(|x| x as usize);
        let mut map = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(file_err("reading"))?;
        let user_rows = take_bags(&mut map, "user_rows", count("user_tokens"))?
            .ok_or_else(|| bad("no user rows".into()))?;
        let item_rows = take_bags(&mut map, "item_rows", count("item_tokens"))?
            .ok_or_else(|| bad("no item rows".into()))?;
        let recent = take_bags(&mut map, "recent", count("recent_tokens"))?;
        let mut pop = |k: &str| -> Result<Vec<f32>> {
            map.remove(k)
                .ok_or_else(|| bad(format!("no tensor {k}")))?
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(file_err("reading"))
        };
        let users = pop("user_vectors")?;
        let items = pop("item_vectors")?;
        let head: [f32; 4] = pop("rating_head")?
            .try_into()
            .map_err(|_| bad("rating head".into()))?;
        // Predictions are clipped to [head[2], head[3]]: a reversed or NaN range would panic.
        if !(head[2].is_finite() && head[3].is_finite() && head[2] <= head[3]) {
            return Err(bad("the rating head's range is not a range".into()));
        }
        let dim = *p.layers.last().unwrap_or(&1);
        let n_items = items.len() / dim;
        if items.len() % dim != 0
            || users.len() % dim != 0
            || item_rows.len() != n_items
            || user_rows.len() * dim != users.len()
        {
            return Err(bad("vector and input shapes disagree".into()));
        }
        let mut weights: Vec<(String, Tensor)> =
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        weights.sort_by(|a, b| a.0.cmp(&b.0));
        let mut store = Store::Load(map);
        let (user_tower, item_tower, _) = towers(
            p,
            &mut store,
            user_rows.n_tokens,
            item_rows.n_tokens,
            recent.as_ref().map(|_| n_items),
        )?;
        store.finish("two-tower")?;
        Ok(TwoTower {
            params: p.clone(),
            content_dnn: false,
            user_tower,
            item_tower,
            weights,
            user_rows,
            item_rows,
            user_names: strings("user")?,
            item_names: strings("item")?,
            recent,
            dim,
            users,
            items,
            head,
        })
    }
}

/// A bag set as three tensors (`NAME.ptr`, `NAME.tok` as u32, `NAME.w`).
fn bag_tensors(name: &str, b: &Bags) -> Result<Vec<(String, Tensor)>> {
    let dev = Device::Cpu;
    let err = file_err("saving inputs");
    let ptr = b
        .ptr
        .iter()
        .map(|&x| u32::try_from(x))
        .collect::<std::result::Result<Vec<u32>, _>>()
        .map_err(|_| {
            Error::artifact(
                "model.safetensors",
                format!("{name}: more than 2^32 inputs"),
            )
        })?;
    Ok(vec![
        (
            format!("{name}.ptr"),
            Tensor::from_vec(ptr, b.ptr.len(), &dev).map_err(&err)?,
        ),
        (
            format!("{name}.tok"),
            Tensor::from_slice(&b.tok, b.tok.len(), &dev).map_err(&err)?,
        ),
        (
            format!("{name}.w"),
            Tensor::from_slice(&b.w, b.w.len(), &dev).map_err(&err)?,
        ),
    ])
}

/// Reads back what [`bag_tensors`] wrote, checking that it is consistent.
fn take_bags(
    map: &mut HashMap<String, Tensor>,
    name: &str,
    n_tokens: Option<usize>,
) -> Result<Option<Bags>> {
    let bad = |m: &str| Error::artifact("model.safetensors", format!("{name}: {m}"));
    let (Some(ptr), Some(tok), Some(w)) = (
        map.remove(&format!("{name}.ptr")),
        map.remove(&format!("{name}.tok")),
        map.remove(&format!("{name}.w")),
    ) else {
        return Ok(None);
    };
    let err = file_err("reading inputs");
    let ptr: Vec<usize> = ptr
        .to_dtype(DType::U32)
        .and_then(|t| t.to_vec1::<u32>())
        .map_err(&err)?
        .into_iter()
        .map(|x| x as usize)
        .collect();
    let tok = tok.to_vec1::<u32>().map_err(&err)?;
    let w = w.to_vec1::<f32>().map_err(&err)?;
    let n_tokens = n_tokens.ok_or_else(|| bad("token count missing"))?;
    if ptr.first() != Some(&0)
        || ptr.windows(2).any(|p| p[0] > p[1])
        || ptr.last() != Some(&tok.len())
        || tok.len() != w.len()
        || tok.iter().any(|&t| t as usize >= n_tokens.max(1))
    {
        return Err(bad("inconsistent"));
    }
    Ok(Some(Bags {
        n_tokens,
        ptr,
        tok,
        w,
    }))
}
