//! Recobro's public contracts, generated from `proto/recobro/v1`.

pub mod v1 {
    tonic::include_proto!("recobro.v1");

    /// Lets gRPC reflection describe every Recobro service.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("recobro_descriptor");
}
