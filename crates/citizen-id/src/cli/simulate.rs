//! `citizen-id simulate pds|gp|generate-patients`: the bundled third-party simulators on their
//! own ports, for partners and tests that want to talk to them over HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Subcommand;

use crate::integrations::{gp, pds};

#[derive(Subcommand)]
pub enum SimulateCommand {
    /// Serve the PDS FHIR R4 simulator.
    Pds {
        #[arg(long, default_value = "127.0.0.1:8091")]
        listen: SocketAddr,
        /// Patients as JSON lines (see `generate-patients`); default: the documented test patients.
        #[arg(long)]
        patients: Option<PathBuf>,
    },
    /// Serve the GP linkage (IDS68 NL01) simulator, seeded with the documented credentials.
    Gp {
        #[arg(long, default_value = "127.0.0.1:8092")]
        listen: SocketAddr,
    },
    /// Write a file of synthetic patients (valid NHS numbers, names, birth dates, postcodes).
    GeneratePatients {
        #[arg(long)]
        count: usize,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

pub async fn run(cmd: SimulateCommand) -> anyhow::Result<()> {
    match cmd {
        SimulateCommand::Pds { listen, patients } => {
            let patients = match patients {
                Some(path) => pds::dataset::read_jsonl(&path)?,
                None => pds::dataset::documented_patients(),
            };
            let count = patients.len();
            let (addr, _handle) = pds::simulator::spawn(listen, patients).await?;
            println!("PDS simulator with {count} patients at http://{addr}/Patient");
            wait_forever().await
        }
        SimulateCommand::Gp { listen } => {
            let (addr, _handle) = gp::simulator::spawn(listen, gp::documented_credentials()).await?;
            println!("GP linkage simulator at http://{addr}/practices");
            wait_forever().await
        }
        SimulateCommand::GeneratePatients { count, out, seed } => {
            let written = pds::dataset::write_jsonl(&out, pds::dataset::generate(count, seed))?;
            println!("wrote {written} patients to {}", out.display());
            Ok(())
        }
    }
}

async fn wait_forever() -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}
