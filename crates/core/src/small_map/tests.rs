use super::SmallMap;

#[test]
fn a_repeated_name_keeps_its_place_and_takes_the_last_value() {
    let mut map = SmallMap::new();
    assert_eq!(map.insert("b".to_string(), 1), None);
    assert_eq!(map.insert("a".to_string(), 2), None);
    assert_eq!(map.insert("b".to_string(), 3), Some(1));
    assert_eq!(map.keys().collect::<Vec<_>>(), ["b", "a"]);
    assert_eq!(map.get("b"), Some(&3));
    assert_eq!(map.len(), 2);
    let parsed: SmallMap<u8> = serde_json::from_str(r#"{"x":1,"y":2,"x":3}"#).unwrap();
    assert_eq!(
        parsed.iter().collect::<Vec<_>>(),
        [(&"x".into(), &3), (&"y".into(), &2)]
    );
}

#[test]
fn it_reads_and_writes_json_objects_and_compares_like_a_map() {
    let map: SmallMap<String> = serde_json::from_str(r#"{"k":"v","j":"w"}"#).unwrap();
    assert_eq!(serde_json::to_string(&map).unwrap(), r#"{"k":"v","j":"w"}"#);
    let reordered: SmallMap<String> = serde_json::from_str(r#"{"j":"w","k":"v"}"#).unwrap();
    assert_eq!(map, reordered);
    let other: SmallMap<String> = serde_json::from_str(r#"{"j":"w","k":"x"}"#).unwrap();
    assert_ne!(map, other);
    assert!(serde_json::from_str::<SmallMap<String>>("[1]").is_err());
    assert!(serde_json::from_str::<SmallMap<String>>(r#"{"k":1}"#).is_err());
}

#[test]
fn removing_and_retaining_drop_entries_by_name() {
    let mut map: SmallMap<u8> = [("a", 1), ("b", 2), ("c", 3)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(map.remove("b"), Some(2));
    assert_eq!(map.remove("b"), None);
    assert!(!map.contains_key("b"));
    map.retain(|name, _| name != "a");
    assert_eq!(map.into_values().collect::<Vec<_>>(), [3]);
}
