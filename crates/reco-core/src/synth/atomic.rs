//! Writing any dataset as RecBole atomic files.

use super::*;

fn clean(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

/// Writes any dataset as RecBole atomic files `dir/NAME.inter`, `.item`, `.user` and
/// `.session`, which [`crate::loaders::recbole::load`] reads back.
pub fn write_atomic(ds: &Dataset, dir: &Path, name: &str) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let open = |ext: &str| -> Result<(std::path::PathBuf, BufWriter<std::fs::File>)> {
        let p = dir.join(format!("{name}.{ext}"));
        let f = std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?;
        Ok((p, BufWriter::with_capacity(1 << 20, f)))
    };
    let m = &ds.interactions;
    let (p, mut w) = open("inter")?;
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| Error::io(&p, e)
    };
    let rating = ds.feedback == Feedback::Explicit;
    write!(
        w,
        "user_id:token\titem_id:token\t{}",
        if rating {
            "rating:float"
        } else {
            "weight:float"
        }
    )
    .map_err(io(&p))?;
    writeln!(
        w,
        "{}",
        if m.has_timestamps() {
            "\ttimestamp:float"
        } else {
            ""
        }
    )
    .map_err(io(&p))?;
    for u in 0..m.n_users() as u32 {
        let ts = m.user_timestamps(u);
        for (k, (&i, &v)) in m.user_items(u).iter().zip(m.user_values(u)).enumerate() {
            write!(w, "{}\t{}\t{}", ds.users.id(u), ds.items.id(i), v).map_err(io(&p))?;
            match ts {
                Some(ts) => writeln!(w, "\t{}", ts[k]),
                None => writeln!(w),
            }
            .map_err(io(&p))?;
        }
    }
    w.flush().map_err(io(&p))?;
    let write_table = |ext: &str, t: &FeatureTable, ids: &IdMap| -> Result<()> {
        let (p, mut w) = open(ext)?;
        let mut header = vec![format!("{ext}_id:token")];
        if t.titles.is_some() {
            header.push("title:token_seq".into());
        }
        header.extend(
            t.categorical
                .iter()
                .map(|f| format!("{}:token_seq", f.name)),
        );
        header.extend(t.numeric.iter().map(|f| format!("{}:float", f.name)));
        header.extend(t.text.iter().map(|f| format!("{}:token_seq", f.name)));
        writeln!(w, "{}", header.join("\t")).map_err(io(&p))?;
        for e in 0..t.len as u32 {
            let mut row = vec![ids.id(e).to_string()];
            if let Some(titles) = &t.titles {
                row.push(clean(&titles[e as usize]));
            }
            row.extend(t.categorical.iter().map(|f| {
                f.of(e)
                    .iter()
                    .map(|&v| clean(f.vocab.id(v)).replace(' ', "_"))
                    .collect::<Vec<_>>()
                    .join(" ")
            }));
            row.extend(t.numeric.iter().map(|f| {
                let v = f.values[e as usize];
                if v.is_nan() {
                    String::new()
                } else {
                    v.to_string()
                }
            }));
            row.extend(t.text.iter().map(|f| clean(&f.values[e as usize])));
            writeln!(w, "{}", row.join("\t")).map_err(io(&p))?;
        }
        w.flush().map_err(io(&p))
    };
    if let Some(t) = &ds.item_features {
        write_table("item", t, &ds.items)?;
    }
    if let Some(t) = &ds.user_features {
        write_table("user", t, &ds.users)?;
    }
    if let Some(s) = &ds.sessions {
        let (p, mut w) = open("session")?;
        writeln!(w, "session_id:token\titem_id:token\tposition:float").map_err(io(&p))?;
        for k in 0..s.len() {
            for (pos, &i) in s.session(k).iter().enumerate() {
                writeln!(w, "{}\t{}\t{}", s.ids.id(k as u32), ds.items.id(i), pos)
                    .map_err(io(&p))?;
            }
        }
        w.flush().map_err(io(&p))?;
    }
    Ok(())
}
