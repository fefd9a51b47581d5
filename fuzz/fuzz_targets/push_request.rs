//! The push request parser on a query, a content type and a body
//! (`pushmon::fuzzing::push_request` says how the input splits).
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| pushmon::fuzzing::push_request(input));
