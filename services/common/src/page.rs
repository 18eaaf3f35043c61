//! Pagination as Google's API guidelines (AIP-158) describe it: a caller asks for `page_size`
//! items (0 means the default, more than the maximum is cut to it, negative is refused) and
//! passes back the `next_page_token` it was given for the next page; an empty token in the
//! answer means there is no more. A token is opaque, and only valid for the query it came from.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::grpc::Refusal;

pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 1_000;

/// What a page asks for: how many, and after which item (its key, from the last page's token).
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub size: usize,
    pub after: Option<String>,
}

impl PageRequest {
    /// `query` names the call and what it filters on (ids only): a token from another query is
    /// refused rather than silently answering something else.
    pub fn parse(page_size: i32, page_token: &str, query: &str) -> Result<PageRequest, Refusal> {
        let size = match usize::try_from(page_size) {
            Err(_) => return Err(Refusal::invalid("page_size", "must not be negative")),
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(size) => size.min(MAX_PAGE_SIZE),
        };
        let page_token = page_token.trim();
        if page_token.is_empty() {
            return Ok(PageRequest { size, after: None });
        }
        let bad = || Refusal::invalid("page_token", "is not a token this call gave");
        let bytes = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = text.splitn(3, '\n');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("v1"), Some(of), Some(after)) if of == query => Ok(PageRequest {
                size,
                after: Some(after.to_string()),
            }),
            (Some("v1"), Some(_), Some(_)) => Err(Refusal::invalid(
                "page_token",
                "belongs to another query: pass the same filters as the call that gave it",
            )),
            _ => Err(bad()),
        }
    }

    /// The key the page starts after, read with `parse` (the inverse of the key `page` wrote):
    /// `None` on the first page; a token whose key does not parse is refused, naming the field.
    pub fn after_key<K>(&self, parse: impl Fn(&str) -> Option<K>) -> Result<Option<K>, Refusal> {
        self.after
            .as_deref()
            .map(|key| {
                parse(key).ok_or_else(|| Refusal::invalid("page_token", "is not a token this call gave"))
            })
            .transpose()
    }

    /// How many rows to fetch: one more than the page, to know whether another follows.
    pub fn limit(&self) -> i64 {
        i64::try_from(self.size).unwrap_or(i64::MAX).saturating_add(1)
    }

    /// The page out of rows fetched with [`PageRequest::limit`], and the token for the next one
    /// (empty when there is none), made of the last item's `key`.
    pub fn page<T>(&self, mut rows: Vec<T>, query: &str, key: impl Fn(&T) -> String) -> (Vec<T>, String) {
        if rows.len() <= self.size {
            return (rows, String::new());
        }
        rows.truncate(self.size);
        let next = rows
            .last()
            .map(|last| URL_SAFE_NO_PAD.encode(format!("v1\n{query}\n{}", key(last))))
            .unwrap_or_default();
        (rows, next)
    }

    /// A page of a list read whole: one bounded by configuration (strategies, templates) or
    /// by a single invoice's ladder, not by data that keeps growing. Ordered by `key`, which
    /// must be unique per item; the list is sorted by it here, so pages follow each other
    /// whatever order the items came in.
    pub fn page_of<T>(&self, mut items: Vec<T>, query: &str, key: impl Fn(&T) -> String) -> (Vec<T>, String) {
        items.sort_by_cached_key(|item| key(item));
        let start = match self.after.as_deref() {
            None => 0,
            Some(after) => items.partition_point(|item| key(item).as_str() <= after),
        };
        let rows: Vec<T> = items
            .into_iter()
            .skip(start)
            .take(self.size.saturating_add(1))
            .collect();
        self.page(rows, query, key)
    }
}

/// The key of a row listed by (time, id), most listings' order: the time in microseconds and
/// the id, for [`PageRequest::page`].
pub fn time_id_key(at: chrono::DateTime<chrono::Utc>, id: uuid::Uuid) -> String {
    format!("{} {id}", at.timestamp_micros())
}

/// The (time, id) a page starts after, read back from [`time_id_key`]'s key.
pub fn parse_time_id_key(key: &str) -> Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> {
    let (micros, id) = key.split_once(' ')?;
    Some((
        chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(refusal: Refusal) -> String {
        match refusal {
            Refusal::InvalidArgument { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pages_follow_each_other_until_an_empty_token() {
        let items: Vec<u32> = (1..=5).collect();
        let query = "ListThings|acme";
        let fetch = |request: &PageRequest| -> Vec<u32> {
            let after: u32 = request.after.as_deref().map_or(0, |a| a.parse().expect("key"));
            items
                .iter()
                .copied()
                .filter(|i| *i > after)
                .take(request.limit() as usize)
                .collect()
        };
        let mut token = String::new();
        let mut seen = Vec::new();
        loop {
            let request = PageRequest::parse(2, &token, query).expect("valid");
            let (page, next) = request.page(fetch(&request), query, |i| i.to_string());
            assert!(page.len() <= 2);
            seen.extend(page);
            if next.is_empty() {
                break;
            }
            token = next;
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn a_list_read_whole_pages_in_key_order_whatever_order_it_came_in() {
        let query = "ListThings|acme";
        let items = vec!["c", "a", "e", "b", "d"];
        let mut token = String::new();
        let mut seen = Vec::new();
        loop {
            let request = PageRequest::parse(2, &token, query).expect("valid");
            let (page, next) = request.page_of(items.clone(), query, |i| i.to_string());
            assert!(page.len() <= 2);
            seen.extend(page);
            if next.is_empty() {
                break;
            }
            token = next;
        }
        assert_eq!(seen, ["a", "b", "c", "d", "e"]);
        // An item removed between pages does not lose the place.
        let first = PageRequest::parse(2, "", query).expect("valid");
        let (_, token) = first.page_of(items.clone(), query, |i| i.to_string());
        let without_b: Vec<&str> = items.iter().copied().filter(|i| *i != "b").collect();
        let second = PageRequest::parse(2, &token, query).expect("valid");
        let (page, _) = second.page_of(without_b, query, |i| i.to_string());
        assert_eq!(page, ["c", "d"]);
    }

    #[test]
    fn sizes_default_and_cap_and_bad_tokens_are_refused_naming_the_field() {
        assert_eq!(
            PageRequest::parse(0, "", "q").expect("ok").size,
            DEFAULT_PAGE_SIZE
        );
        assert_eq!(
            PageRequest::parse(1_000_000, "", "q").expect("ok").size,
            MAX_PAGE_SIZE
        );
        assert_eq!(
            field(PageRequest::parse(-1, "", "q").expect_err("negative")),
            "page_size"
        );
        assert_eq!(
            field(PageRequest::parse(10, "%%%", "q").expect_err("garbage")),
            "page_token"
        );
        let (_, token) = PageRequest::parse(1, "", "q1")
            .expect("ok")
            .page(vec![1, 2], "q1", |i: &i32| i.to_string());
        assert!(PageRequest::parse(1, &token, "q1").is_ok());
        let other = PageRequest::parse(1, &token, "q2").expect_err("another query");
        assert_eq!(field(other), "page_token");
        // The key inside a valid token is read back; one that does not parse is refused.
        let next = PageRequest::parse(1, &token, "q1").expect("ok");
        assert_eq!(
            next.after_key(|key| key.parse::<i32>().ok()).expect("a key"),
            Some(1)
        );
        let unreadable = next.after_key(|_| None::<i32>).expect_err("unparsable key");
        assert_eq!(field(unreadable), "page_token");
        assert_eq!(
            PageRequest::parse(1, "", "q1")
                .expect("ok")
                .after_key(|_| Some(0))
                .expect("first"),
            None
        );
    }

    #[test]
    fn a_time_and_id_key_reads_back_and_a_bad_one_does_not() {
        let at = chrono::DateTime::from_timestamp_micros(1_790_000_000_123_456).expect("time");
        let id = uuid::Uuid::from_u128(7);
        assert_eq!(parse_time_id_key(&time_id_key(at, id)), Some((at, id)));
        for bad in [
            "",
            "123",
            "x 00000000-0000-0000-0000-000000000007",
            "123 not-an-id",
        ] {
            assert_eq!(parse_time_id_key(bad), None, "{bad:?}");
        }
    }
}
