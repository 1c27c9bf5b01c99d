use std::process::ExitCode;

// The webhook allocates many small strings and maps per review; mimalloc serves those faster
// than glibc's malloc and returns memory more promptly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    pytune::cli::main()
}
