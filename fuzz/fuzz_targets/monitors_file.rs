//! The monitors file, parsed and checked without a store
//! (`pushmon::fuzzing::monitors_file`).
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| pushmon::fuzzing::monitors_file(input));
