//! Test guest: returns a record whose `op` is 7, a discriminant the `op` enum does not
//! have. No Rust binding can produce that, so the `handle` export is written by hand
//! against the canonical ABI. The world's type section (with the export) comes from a
//! `generate!` here: the shared bindings' section has exports removed.

#![allow(clippy::too_many_arguments)]

#[cfg(target_arch = "wasm32")]
wit_bindgen::generate!({ path: "../../wit", world: "sync-trigger" });

#[cfg(target_arch = "wasm32")]
mod raw {
    /// `result<sync-event, trigger-error>`: discriminant at 0, the event from offset 4
    /// (version, five strings, the record list), 56 bytes in all.
    #[repr(C, align(4))]
    struct Ret([u32; 14]);
    /// `dataset-record`: key at 0, old-value at 8, new-value at 20, op at 32; 36 bytes.
    #[repr(C, align(4))]
    struct Rec([u32; 9]);

    static mut RET: Ret = Ret([0; 14]);
    static mut REC: Rec = Rec([0; 9]);
    static KEY: &[u8] = b"SampleKey1";
    static VALUE: &[u8] = b"value";

    #[unsafe(export_name = "handle")]
    #[allow(clippy::too_many_arguments)]
    unsafe extern "C" fn handle(
        version: u32,
        event_type: u32,
        event_type_len: u32,
        region: u32,
        region_len: u32,
        pool: u32,
        pool_len: u32,
        identity: u32,
        identity_len: u32,
        dataset: u32,
        dataset_len: u32,
        _records: u32,
        _records_len: u32,
    ) -> *mut u8 {
        wit_bindgen::rt::maybe_link_cabi_realloc();
        super::synctrig::trigger::log::log(super::synctrig::trigger::log::Level::Info, "returning op 7");
        unsafe {
            let rec = &raw mut REC;
            (*rec).0 =
                [KEY.as_ptr() as u32, KEY.len() as u32, 0, 0, 0, 1, VALUE.as_ptr() as u32, VALUE.len() as u32, 7];
            let ret = &raw mut RET;
            (*ret).0 = [
                0,
                version,
                event_type,
                event_type_len,
                region,
                region_len,
                pool,
                pool_len,
                identity,
                identity_len,
                dataset,
                dataset_len,
                rec as u32,
                1,
            ];
            ret as *mut u8
        }
    }

    #[unsafe(export_name = "cabi_post_handle")]
    unsafe extern "C" fn post_handle(_ret: *mut u8) {}
}
