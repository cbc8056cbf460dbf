//! # ipc-shm
//!
//! Shared memory for the ipc toolkit: a [`Channel`](ipc_core::Channel) whose frames
//! travel through two single-producer, single-consumer byte rings in a sealed `memfd`
//! that both processes map, one ring per direction.

#![deny(unsafe_code)]

#[allow(dead_code)] // used by the channel (next step)
mod ring;
#[allow(dead_code)] // used by the channel (next step)
mod segment;
