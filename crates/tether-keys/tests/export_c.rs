//! The exported C header compiles with gcc, and a C program including it prints
//! exactly the DER (or the PEM string) it was made from.

mod common;

use std::process::Command;

use common::{tempdir, write};
use tether_keys::convert::{Options, Target, convert};
use tether_keys::export::c_header;
use tether_keys::generate::{KeySpec, generate};

const PROGRAM: &str = r#"
#include <stdio.h>
#include <string.h>
#include "key.h"
#include "key.h" /* the include guard makes a second include harmless */
int main(void) {
#ifdef AS_STRING
    if (strlen((const char *)dev_key) != dev_key_len) return 3;
#endif
    return fwrite(dev_key, 1, dev_key_len, stdout) == dev_key_len ? 0 : 2;
}
"#;

fn compile_and_run(dir: &std::path::Path, header: &str, defines: &[&str]) -> Vec<u8> {
    write(dir, "key.h", header.as_bytes());
    write(dir, "main.c", PROGRAM.as_bytes());
    let status = Command::new("gcc")
        .args([
            "-std=c99", "-Wall", "-Wextra", "-Werror", "-o", "dump", "main.c",
        ])
        .args(defines)
        .current_dir(dir)
        .status()
        .expect("gcc must be installed for this test");
    assert!(status.success(), "gcc rejected the header:\n{header}");
    let out = Command::new(dir.join("dump"))
        .output()
        .expect("run the program");
    assert!(
        out.status.success(),
        "the C program failed: {:?}",
        out.status
    );
    out.stdout
}

#[test]
fn c_header_bytes_equal_the_der() {
    let dir = tempdir();
    let key = generate(KeySpec::Es256).expect("keygen");
    let parsed = tether_keys::parse(key.public_key().spki_der()).expect("parse");
    let der = convert(
        &parsed,
        Target::Spki,
        Options {
            der: true,
            ..Options::default()
        },
    )
    .expect("der");
    let header = c_header("dev_key", &der.bytes, false, "test key").expect("header");
    assert_eq!(compile_and_run(dir.path(), &header, &[]), der.bytes);
}

#[test]
fn c_header_pem_is_a_nul_terminated_string() {
    let dir = tempdir();
    let key = generate(KeySpec::Rs256 { bits: 2048 }).expect("keygen");
    let parsed = tether_keys::parse(key.public_key().spki_der()).expect("parse");
    let pem = convert(&parsed, Target::Spki, Options::default()).expect("pem");
    let header = c_header("dev_key", &pem.bytes, true, "test key").expect("header");
    assert_eq!(
        compile_and_run(dir.path(), &header, &["-DAS_STRING"]),
        pem.bytes
    );
}
