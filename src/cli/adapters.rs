//! `wgpu-lab adapters`: every adapter on every backend, with the features and limits that
//! matter here.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use wgpu_lab::bench::table;
use wgpu_lab::gpu::adapters;

use super::SelectArgs;

/// Options of `adapters`.
#[derive(Args)]
pub struct AdaptersArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Lists the adapters, then which one the selection options pick.
pub fn run(select: &SelectArgs, args: AdaptersArgs) -> Result<ExitCode> {
    let AdaptersArgs { json } = args;
    let list = adapters::list_adapters();
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        return Err(wgpu_lab::LabError::NoAdapter {
            backend_note: String::new(),
        }
        .into());
    } else {
        print!("{}", adapters_table(&list));
        let instance = adapters::new_instance();
        match adapters::select(&instance, &select.selector()?) {
            Ok((i, _)) => println!(
                "selected by default / by your options: {}",
                list[i].one_line()
            ),
            Err(e) => println!("no adapter matches your options: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn adapters_table(list: &[adapters::AdapterSummary]) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mib = |b: u64| format!("{} MiB", b >> 20);
    let mut cells = vec![[
        "#",
        "name",
        "backend",
        "type",
        "driver",
        "f16",
        "timestamps",
        "subgroup",
        "dot4x8",
        "max binding",
        "max buffer",
        "wg memory",
        "wg invocations",
        "wg per dim",
    ]
    .map(String::from)
    .to_vec()];
    for a in list {
        cells.push(vec![
            a.index.to_string(),
            a.name.clone(),
            a.backend.clone(),
            a.device_type.clone(),
            a.driver.clone(),
            yes(a.shader_f16),
            yes(a.timestamp_query),
            if a.subgroup {
                format!("{}-{}", a.subgroup_min_size, a.subgroup_max_size)
            } else {
                "no".into()
            },
            yes(a.packed_4x8_dot),
            mib(a.max_storage_buffer_binding_size),
            mib(a.max_buffer_size),
            format!("{} KiB", a.max_compute_workgroup_storage_size >> 10),
            a.max_compute_invocations_per_workgroup.to_string(),
            a.max_compute_workgroups_per_dimension.to_string(),
        ]);
    }
    table::render(&cells)
}
