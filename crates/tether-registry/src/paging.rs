//! Page sizes and opaque page tokens. A token encodes the last key of the previous page
//! (keyset paging), so pages stay stable while rows are added or removed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::model::limits;
use crate::store::{Page, PageRequest, StoreError};

const PREFIX: &str = "tether1";

/// What a list is ordered by; tokens of one list are refused by the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyset {
    /// Registries, by id.
    Registries,
    /// Devices, by numId.
    Devices,
}

impl Keyset {
    fn tag(self) -> &'static str {
        match self {
            Keyset::Registries => "r",
            Keyset::Devices => "d",
        }
    }
}

/// The number of items to return: 0 means the maximum; larger requests are capped.
pub(crate) fn page_size(page: &PageRequest) -> usize {
    match page.page_size {
        0 => limits::PAGE_SIZE_MAX,
        n => n.min(limits::PAGE_SIZE_MAX),
    }
}

/// The token that continues after `last_key`.
pub(crate) fn encode(keyset: Keyset, last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}:{}:{last_key}", keyset.tag()))
}

/// The last key of the previous page, or `None` for the first page.
pub(crate) fn decode(keyset: Keyset, token: &str) -> Result<Option<String>, StoreError> {
    if token.is_empty() {
        return Ok(None);
    }
    let refuse = || {
        StoreError::InvalidArgument(format!("pageToken '{token}' is not one this server issued"))
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| refuse())?;
    let text = String::from_utf8(bytes).map_err(|_| refuse())?;
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(PREFIX), Some(tag), Some(key)) if tag == keyset.tag() && !key.is_empty() => {
            Ok(Some(key.to_string()))
        }
        _ => Err(refuse()),
    }
}

/// The page to return from `items`, read with a limit of `size + 1`: at most `size`
/// items, and a token for the next page only if that extra row came back.
pub(crate) fn page_of<T>(
    mut items: Vec<T>,
    size: usize,
    keyset: Keyset,
    key: impl Fn(&T) -> String,
) -> Page<T> {
    let next_page_token = if items.len() > size {
        items.truncate(size);
        items
            .last()
            .map(|last| encode(keyset, &key(last)))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Page {
        items,
        next_page_token,
    }
}

/// A device-list token's numId.
pub(crate) fn decode_num_id(token: &str) -> Result<Option<i64>, StoreError> {
    decode(Keyset::Devices, token)?
        .map(|key| {
            key.parse::<i64>().map_err(|_| {
                StoreError::InvalidArgument(format!(
                    "pageToken '{token}' is not one this server issued"
                ))
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_strangers() {
        let t = encode(Keyset::Registries, "reg-1");
        assert_eq!(decode(Keyset::Registries, &t), Ok(Some("reg-1".into())));
        assert!(decode(Keyset::Devices, &t).is_err());
        assert_eq!(decode(Keyset::Devices, ""), Ok(None));
        assert_eq!(
            decode(Keyset::Devices, "abc!"),
            Err(StoreError::InvalidArgument(
                "pageToken 'abc!' is not one this server issued".into()
            ))
        );
        let d = encode(Keyset::Devices, "12345");
        assert_eq!(decode_num_id(&d), Ok(Some(12345)));
        assert!(decode_num_id(&encode(Keyset::Devices, "x")).is_err());
        assert_eq!(page_size(&PageRequest::default()), limits::PAGE_SIZE_MAX);
        let big = PageRequest {
            page_size: 100_000,
            page_token: String::new(),
        };
        assert_eq!(page_size(&big), limits::PAGE_SIZE_MAX);
    }
}
