use clap::Parser as _;

#[tokio::main]
async fn main() {
    let cli = citizen_id::cli::Cli::parse();
    if let Err(e) = citizen_id::cli::run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
