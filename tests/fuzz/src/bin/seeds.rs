//! `fuzz-seeds OUT`: writes the seed corpus of every target to `OUT/<target>/`.

fn main() {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: fuzz-seeds OUT");
        std::process::exit(2);
    };
    cascade_fuzz::seeds::write(std::path::Path::new(&out));
}
