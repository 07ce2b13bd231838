//! The `netspy` binary: everything lives in the library; see `netspy::cli`.

fn main() -> std::process::ExitCode {
    netspy::cli::main()
}
