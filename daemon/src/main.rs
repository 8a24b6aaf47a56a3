fn main() -> std::process::ExitCode {
    pm_daemon::cli::main()
}
