//! placeholder
pub(crate) fn check_request(_m: &str, _p: &str, _pairs: &[(String, String)]) -> Result<(), crate::error::ApiError> {
    Ok(())
}
