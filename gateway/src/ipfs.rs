//! The block forms of `GET /ipfs/{cid}`: `?format=raw` (one block) and
//! `?format=car` (the whole DAG as a CARv1).

use cid::Cid;
use warp::reply::Response;

use crate::Gateway;
use crate::download::Conditions;
use crate::error::Failure;

/// `GET /ipfs/{cid}?format=raw`.
pub(crate) async fn raw_block(
    _g: &Gateway,
    cid: Cid,
    _conditions: &Conditions,
) -> Result<Response, Failure> {
    Err(Failure::NotFound(format!(
        "{cid}: raw blocks are not served yet"
    )))
}

/// `GET /ipfs/{cid}?format=car`.
pub(crate) async fn car(_g: &Gateway, cid: Cid) -> Result<Response, Failure> {
    Err(Failure::NotFound(format!("{cid}: CARs are not served yet")))
}
