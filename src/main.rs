fn main() -> std::process::ExitCode {
    partner_catalog::cli::main()
}
