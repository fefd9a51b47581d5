//! Every stored-record decoder on the same bytes, and the round trip of what decodes
//! (`pushmon::fuzzing::stored_records`).
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| pushmon::fuzzing::stored_records(input));
