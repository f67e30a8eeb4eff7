//! Parsing and validation of whole scenario files.

use super::*;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(text, "s.toml", "s", Path::new("."))
}

fn error(text: &str) -> String {
    match parse(text) {
        Ok(scenario) => panic!("accepted: {scenario:?}"),
        Err(error) => error.to_string(),
    }
}

fn fixed(text: &str) -> Fixed {
    text.parse().unwrap()
}

#[test]
fn the_form_from_the_issue_works() {
    let scenario = parse(
        r#"
[[override]]
protocol = "maker"      # maker | aave-v2 | aave-v3 | compound-v2
market = "ETH-B"        # ilk, reserve symbol or address
param = "mat"           # protocol's own parameter name
value = "1.5"
# from = "2022-06-01T00:00:00Z"   # optional
"#,
    )
    .unwrap();
    assert_eq!(
        scenario.overrides,
        [Override {
            protocol: Protocol::Maker,
            market: MarketSel::One(Id::name("ETH-B")),
            param: Param::MakerMat,
            value: fixed("1.5"),
            from: None,
        }]
    );
    assert_eq!(scenario.name, "s");
    assert!(!scenario.is_baseline());
    assert_eq!(scenario.changes(), ["maker ETH-B mat = 1.5"]);
}

#[test]
fn numbers_are_exact_whatever_way_they_are_written() {
    let scenario = parse(
        r#"
[[override]]
protocol = "maker"
market = "ETH-B"
param = "mat"
value = 1.45
from = 2022-06-01T00:00:00Z

[[override]]
protocol = "aave-v2"
market = "WETH"
param = "liquidationThreshold"
value = "82.5%"

[[override]]
protocol = "maker"
market = "ETH-B"
param = "tail"
value = "2h20m"
"#,
    )
    .unwrap();
    assert_eq!(scenario.overrides[0].value, fixed("1.45"));
    assert_eq!(scenario.overrides[0].from, Some(Timestamp(1_654_041_600)));
    assert_eq!(scenario.overrides[1].value, fixed("0.825"));
    assert_eq!(scenario.overrides[1].param, Param::AaveLiquidationThreshold);
    assert_eq!(scenario.overrides[2].value, fixed("8400"));
}

#[test]
fn a_full_scenario() {
    let scenario = parse(
        r#"
name = "everything"
description = "one of each"
window = { from = "2022-06-12", to = "2022-06-15T00:00:00Z" }

[[override]]
protocol = "maker"
param = "Hole"
value = "100000000"

[[oracle]]
protocol = "maker"
asset = "ETH"
delay = "0s"

[[oracle]]
asset = "WETH"
deviation = "0.5%"
heartbeat = "1h"
source_feed = "0x5f4ec3df9cbd43714fe2740f5e3616155c5b8419"

[[price]]
asset = "ETH"
transform = "scale-drawdown"
factor = "2"
from = "2022-06-12T00:00:00Z"

[[price]]
asset = "DAI"
transform = "cap"
max = "1.00"

[[price]]
asset = "ETH"
transform = "shift"
by = "-30m"

[liquidator]
latency = "1m"
block_time = 12
max_per_block = 3
gas_cost = "40"
min_profit = "100.5"
pick = "best-bonus"
keeper_discount = "3%"

[[impact]]
asset = "ETH"
model = "constant-product"
base_reserve = "20000.12345678901"
quote_reserve = "60000000.98765432"
half_life = "30m"

[[impact]]
asset = "WBTC"
model = "depth"
depth = "500"
slippage = "2%"
half_life = "1h"
"#,
    )
    .unwrap();
    assert_eq!(scenario.name, "everything");
    assert_eq!(scenario.window.from, Some(Timestamp(1_654_992_000)));
    assert_eq!(scenario.window.to, Some(Timestamp(1_655_251_200)));
    assert_eq!(scenario.overrides[0].market, MarketSel::All);
    assert_eq!(scenario.oracle[0].delay, Some(0));
    let update = scenario.oracle[1].update.unwrap();
    assert_eq!(update.deviation, Some(fixed("0.005")));
    assert_eq!(update.heartbeat, Some(3_600));
    assert!(matches!(
        scenario.oracle[1].source,
        Some(PriceSource::Feed(Id::Address(_)))
    ));
    assert_eq!(
        scenario.prices[2].kind,
        TransformKind::Shift { seconds: -1_800 }
    );
    let policy = &scenario.liquidator;
    assert_eq!(policy.latency, 60);
    assert_eq!(policy.max_per_block, Some(3));
    assert_eq!(policy.gas_cost, U256::from(40u8) * WAD);
    assert_eq!(
        policy.min_profit,
        U256::from(1005u16) * WAD / U256::from(10u8)
    );
    assert_eq!(policy.pick, PairChoice::BestBonus);
    assert_eq!(
        policy.keeper_discount,
        U256::from(3u8) * WAD / U256::from(100u8)
    );
    assert_eq!(
        scenario.impact[0].model,
        ImpactModel::ConstantProduct {
            liquidity: Liquidity::Reserves {
                base: U256::from(20_000_123_456_789_010_000_000u128),
                quote: U256::from(60_000_000_987_654_320_000_000_000u128),
            },
            fee: U256::from(3_000_000_000_000_000u64),
        }
    );
    // 1 override, 3 oracle changes (delay; update rule and source), 3 transforms, 2 impacts.
    assert_eq!(scenario.changes().len(), 9);
    let json = serde_json::to_value(&scenario).unwrap();
    assert_eq!(json["overrides"][0]["market"], "*");
    assert_eq!(json["overrides"][0]["param"], "Hole");
    assert_eq!(json["overrides"][0]["value"], "100000000");
    assert_eq!(json["prices"][0]["transform"], "scale-drawdown");
    assert_eq!(json["impact"][1]["model"], "depth");
}

#[test]
fn an_empty_scenario_is_the_baseline() {
    let scenario = parse("[liquidator]\nlatency = \"12s\"\n").unwrap();
    assert!(scenario.is_baseline());
    assert!(scenario.changes().is_empty());
    assert_eq!(scenario.label(), BASELINE_LABEL);
    assert!(Scenario::baseline().is_baseline());
}

#[test]
fn errors_name_file_position_key_and_value() {
    let text = "[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparam = \"mat\"\nvalue = \"abc\"\n";
    assert_eq!(
        error(text),
        "s.toml:5:9: override[0].value = \"abc\": \"abc\" is not a decimal number"
    );
    let low = "[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparam = \"mat\"\nvalue = \"0.5\"\n";
    assert_eq!(
        error(low),
        "s.toml:5:9: override[0].value = \"0.5\": maker mat must be a ratio of at least 1 (e.g. 1.5), from 1 to 100"
    );
}

#[test]
fn a_huge_value_gives_a_short_error_with_its_length() {
    let huge = "9".repeat(100_000) + "x";
    let message = error(&format!(
        "[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparam = \"mat\"\nvalue = \"{huge}\"\n"
    ));
    assert!(message.len() < 500, "{} bytes", message.len());
    assert!(
        message.starts_with("s.toml:5:9: override[0].value = \"999")
            && message.contains("… (100003 bytes)"),
        "{message}"
    );
}

#[test]
fn rejects_what_it_cannot_mean() {
    let cases = [
        // Unknown protocol, unknown parameter, typo in a key.
        (
            "[[override]]\nprotocol = \"makr\"\nmarket = \"ETH-B\"\nparam = \"mat\"\nvalue = \"1.5\"",
            "unknown protocol \"makr\"",
        ),
        (
            "[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparam = \"liquidationThreshold\"\nvalue = \"1.5\"",
            "not a maker parameter (expected one of: mat, chop",
        ),
        (
            "[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparm = \"mat\"\nvalue = \"1.5\"",
            "unknown key override[0].parm",
        ),
        (
            "[[override]]\nprotocol = \"liquity\"\nmarket = \"x\"\nparam = \"mat\"\nvalue = \"1\"",
            "liquity has no parameters",
        ),
        // A market parameter without a market, a global one with a market.
        (
            "[[override]]\nprotocol = \"maker\"\nparam = \"mat\"\nvalue = \"1.5\"",
            "override[0].market is required",
        ),
        (
            "[[override]]\nprotocol = \"compound-v2\"\nmarket = \"cETH\"\nparam = \"closeFactor\"\nvalue = \"0.5\"",
            "is a global parameter",
        ),
        // Basis points where a fraction is meant; a negative value; a float where a count is meant.
        (
            "[[override]]\nprotocol = \"aave-v3\"\nmarket = \"WETH\"\nparam = \"lt\"\nvalue = 8250",
            "not basis points",
        ),
        (
            "[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparam = \"dust\"\nvalue = \"-5\"",
            "is negative",
        ),
        (
            "[liquidator]\nmax_per_block = 2.5",
            "expected a whole number",
        ),
        ("[liquidator]\nmax_per_block = 0", "at least 1"),
        (
            "[liquidator]\npick = \"random\"",
            "expected one of: largest-debt, best-bonus",
        ),
        (
            "[liquidator]\nkeeper_discount = \"100%\"",
            "a discount is a fraction below 1",
        ),
        (
            "[liquidator]\ngas_cost = \"5%\"",
            "a percentage is not allowed here",
        ),
        // Windows and times.
        (
            "window = { from = \"2022-06-13\", to = \"2022-06-12\" }",
            "the window ends before it starts",
        ),
        ("window = { from = \"yesterday\" }", "is not a UTC time"),
        // Oracle rules that change nothing or contradict themselves.
        (
            "[[oracle]]\nasset = \"ETH\"",
            "oracle[0].delay, stale_after",
        ),
        (
            "[[oracle]]\nsource_feed = \"a\"\nsource_asset = \"b\"",
            "not both",
        ),
        ("[[oracle]]\ndelay = \"soon\"", "is not a duration"),
        (
            "[[oracle]]\nprotocol = \"aave-v2\"\ndelay = \"1m\"",
            "only the Maker OSM has a publication delay",
        ),
        // Price transforms.
        (
            "[[price]]\nasset = \"ETH\"\ntransform = \"cap\"\nfactor = \"2\"",
            "not used by transform = \"cap\"",
        ),
        (
            "[[price]]\nasset = \"ETH\"\ntransform = \"squash\"",
            "expected one of: scale-drawdown, shift, cap, floor",
        ),
        (
            "[[price]]\nasset = \"ETH\"\ntransform = \"scale-drawdown\"",
            "price[0].factor is required",
        ),
        (
            "[[price]]\nasset = \"ETH\"\ntransform = \"cap\"\nmax = \"0\"",
            "a price must be above 0",
        ),
        // Impact models.
        (
            "[[impact]]\nasset = \"ETH\"\nmodel = \"depth\"\ndepth = \"10\"\nslippage = \"2%\"",
            "impact[0].half_life is required",
        ),
        (
            "[[impact]]\nasset = \"ETH\"\nmodel = \"depth\"\ndepth = \"10\"\nslippage = \"200%\"\nhalf_life = 60",
            "a slippage is a fraction",
        ),
        (
            "[[impact]]\nasset = \"ETH\"\nmodel = \"constant-product\"\nhalf_life = 60",
            "base_reserve and quote_reserve, or reserves_file",
        ),
        (
            "[[impact]]\nasset = \"ETH\"\nmodel = \"depth\"\ndepth = \"10\"\nslippage = \"2%\"\nhalf_life = \"0s\"",
            "s.toml:6:13: impact[0].half_life = \"0s\": a half-life of 0 removes the impact",
        ),
        (
            "[[impact]]\nasset = \"ETH\"\nmodel = \"constant-product\"\nhalf_life = 60\nbase_reserve = \"1\"\nquote_reserve = \"1\"\ndepth = \"3\"",
            "unknown key impact[0].depth",
        ),
        (
            "[[impact]]\nasset = \"ETH\"\nmodel = \"depth\"\ndepth = \"1\"\nslippage = \"1%\"\nhalf_life = 1\n[[impact]]\nasset = \"ETH\"\nmodel = \"depth\"\ndepth = \"1\"\nslippage = \"1%\"\nhalf_life = 1",
            "a second impact model for the same asset",
        ),
        (
            "[[impact]]\nasset = \"ETH\"\nmodel = \"constant-product\"\nhalf_life = 60\nreserves_file = \"nowhere.json\"\nreserves_start = \"2021-05-19\"\nbase_key = \"WETH\"\nquote_key = \"DAI\"",
            "nowhere.json: cannot read",
        ),
        // Two overrides of one thing from the same time; a root key that does not exist.
        (
            "[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparam = \"mat\"\nvalue = \"1.5\"\n[[override]]\nprotocol = \"maker\"\nmarket = \"ETH-B\"\nparam = \"SPOTTER.mat\"\nvalue = \"1.6\"",
            "override[0] already sets maker ETH-B mat",
        ),
        ("[overide]\nprotocol = \"maker\"", "unknown key overide"),
        ("value = ", "not valid TOML"),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(
            message.contains(expected),
            "{text:?}\n gave: {message}\n expected: {expected}"
        );
        assert!(message.starts_with("s.toml"), "{message}");
    }
}

#[test]
fn overrides_in_effect_depend_on_time_market_and_window() {
    let scenario = parse(
        r#"
window = { from = "2022-06-01" }
[[override]]
protocol = "maker"
market = "ETH-B"
param = "mat"
value = "1.5"
[[override]]
protocol = "maker"
market = "ETH-B"
param = "mat"
value = "1.7"
from = "2022-06-10"
[[override]]
protocol = "maker"
market = "ETH-A"
param = "chop"
value = "1.10"
[[override]]
protocol = "maker"
param = "Hole"
value = "1000"
"#,
    )
    .unwrap();
    let eth_b = Id::name("ETH-B");
    assert!(
        scenario
            .overrides_at(Protocol::Maker, &eth_b, Timestamp(1_654_000_000))
            .is_empty(),
        "before the window"
    );
    let june_5 = scenario.overrides_at(Protocol::Maker, &eth_b, Timestamp(1_654_387_200));
    assert_eq!(
        june_5,
        BTreeMap::from([
            (Param::MakerMat, fixed("1.5")),
            (Param::MakerGlobalHole, fixed("1000"))
        ])
    );
    let june_11 = scenario.overrides_at(Protocol::Maker, &eth_b, Timestamp(1_654_905_600));
    assert_eq!(june_11[&Param::MakerMat], fixed("1.7"));
    let eth_a = scenario.overrides_at(
        Protocol::Maker,
        &Id::name("ETH-A"),
        Timestamp(1_654_905_600),
    );
    assert_eq!(eth_a[&Param::MakerChop], fixed("0.10"));
    assert!(
        scenario
            .overrides_at(Protocol::AaveV2, &eth_b, Timestamp(1_654_905_600))
            .is_empty()
    );
    let point = scenario.with_override(
        Protocol::Maker,
        MarketSel::One(eth_b),
        Param::MakerMat,
        fixed("1.3"),
    );
    assert_eq!(
        point.overrides.len(),
        3,
        "both mat overrides replaced by one"
    );
    assert_eq!(
        point.overrides_at(Protocol::Maker, &eth_b, Timestamp(1_654_905_600))[&Param::MakerMat],
        fixed("1.3")
    );
}

#[test]
fn reserves_series_are_read_exactly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pool.json"),
        r#"[{"DAI": 60000000.98765432, "WETH": 20000.12345678901}, {"DAI": 1.5e3, "WETH": 2}]"#,
    )
    .unwrap();
    let text = r#"
[[impact]]
asset = "ETH"
model = "constant-product"
reserves_file = "pool.json"
reserves_start = "2021-05-19T00:00:00Z"
base_key = "WETH"
quote_key = "DAI"
half_life = "10m"
"#;
    let scenario = Scenario::parse(text, "s.toml", "s", dir.path()).unwrap();
    let ImpactModel::ConstantProduct {
        liquidity:
            Liquidity::Series {
                start,
                interval,
                points,
                count,
                ..
            },
        ..
    } = &scenario.impact[0].model
    else {
        panic!("not a series: {:?}", scenario.impact[0].model);
    };
    assert_eq!(
        (*start, *interval, *count),
        (Timestamp(1_621_382_400), 600, 2)
    );
    assert_eq!(points[0].0, U256::from(20_000_123_456_789_010_000_000u128));
    assert_eq!(
        points[1],
        (U256::from(2u8) * WAD, U256::from(1_500u16) * WAD)
    );
    std::fs::write(dir.path().join("pool.json"), r#"[{"DAI": 5}]"#).unwrap();
    let message = Scenario::parse(text, "s.toml", "s", dir.path())
        .unwrap_err()
        .to_string();
    assert!(message.contains("snapshot 0 has no \"WETH\""), "{message}");
}

#[test]
fn price_paths_name_the_scenario_when_an_asset_has_no_prices() {
    let scenario = parse("[[price]]\nasset = \"DAI\"\ntransform = \"cap\"\nmax = \"1\"").unwrap();
    let message = scenario
        .price_paths(BTreeMap::new())
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "s.toml: a price transform names DAI, but the log has no price for it"
    );
}

#[test]
fn a_drawdown_without_its_own_from_measures_from_the_window_start() {
    let wad = |units: u64| Fixed::new(U256::from(units) * WAD, 18);
    let (start, crash) = (Timestamp(1_654_992_000), Timestamp(1_655_078_400));
    let eth = Id::name("WETH");
    // The log's first price (long before the window) is below the crash price: measured from
    // there, the crash would be no drawdown at all.
    let series = BTreeMap::from([(
        eth,
        vec![
            (Timestamp(1_609_459_200), wad(700)),
            (start, wad(1_500)),
            (crash, wad(1_200)),
        ],
    )]);
    let scenario = parse(
        r#"
window = { from = "2022-06-12T00:00:00Z" }
[[price]]
asset = "WETH"
transform = "scale-drawdown"
factor = "2"
"#,
    )
    .unwrap();
    let paths = scenario.price_paths(series).unwrap();
    assert_eq!(paths.price(&eth, crash, wad(1_200)), wad(900));
    assert!(
        scenario
            .changes()
            .iter()
            .any(|line| line == "WETH price drawdown x2 below the window-start price"),
        "{:?}",
        scenario.changes()
    );
}

#[test]
fn the_fixture_scenarios_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scenarios");
    // The fixtures name their data files relative to ../shared/data (`--data-dir`).
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            match Scenario::load_with_data_dir(&path, Some(&data)) {
                Ok(_) => {}
                // Scenarios reading pool reserves from ../shared/data need it present.
                Err(ScenarioError::Data { .. }) if !data.exists() => {
                    eprintln!("skipping {}: ../shared/data not found", path.display());
                }
                Err(error) => panic!("{error}"),
            }
            seen += 1;
        }
    }
    assert!(seen >= 4, "the fixtures hold example scenarios");
}

#[test]
fn the_leverage_section_caps_loops_and_replaces_correlation_groups() {
    let scenario = parse(
        r#"
window = { from = "2022-06-13T00:00:00Z" }

[leverage]
max_loops = 2
looped_threshold_cut_bps = 750

[leverage.correlation]
USD = ["USDC", "DAI"]
ETH = ["WETH", "stETH"]
"#,
    )
    .unwrap();
    assert_eq!(scenario.leverage.max_loops, Some(2));
    assert_eq!(scenario.leverage.looped_threshold_cut_bps, Some(750));
    // Groups sorted by name whatever the file's order.
    let groups = scenario.leverage.correlation.as_ref().unwrap();
    assert_eq!(
        groups,
        &[
            CorrelationGroup {
                assets: vec!["WETH".to_owned(), "stETH".to_owned()],
                name: "ETH".to_owned(),
            },
            CorrelationGroup {
                assets: vec!["USDC".to_owned(), "DAI".to_owned()],
                name: "USD".to_owned(),
            },
        ]
    );
    assert!(!scenario.is_baseline());
    assert_eq!(
        scenario.changes(),
        [
            "looped positions unwound to at most 2 loops at the window start",
            "liquidation thresholds of looped positions cut by 750 bps at the window start",
            "correlation groups: ETH = WETH, stETH; USD = USDC, DAI",
        ]
    );
    // The engine's table follows it: USDT is in no group any more, stETH is with WETH.
    let table = crate::leverage::loops::Correlation::of(&scenario.leverage);
    assert_eq!(table.group(&Id::name("STETH")), "ETH");
    assert_eq!(table.group(&Id::name("USDT")), "USDT");
    // Without the section, the default table.
    let plain = parse("").unwrap();
    assert!(plain.leverage.is_default());
    assert_eq!(
        crate::leverage::loops::Correlation::of(&plain.leverage).group(&Id::name("USDT")),
        "USD"
    );
}

#[test]
fn the_leverage_section_refuses_what_it_cannot_mean() {
    assert_eq!(
        error("[leverage]\nmax_loops = 1\n"),
        "s.toml:2:13: leverage.max_loops = 1: loops are found at the window start: give the \
         scenario a window.from (a log's positions are built by its events, there are none \
         before the first)"
    );
    assert_eq!(
        error("[leverage]\nlooped_threshold_cut_bps = 500\n"),
        "s.toml:2:28: leverage.looped_threshold_cut_bps = 500: loops are found at the window \
         start: give the scenario a window.from (a log's positions are built by its events, \
         there are none before the first)"
    );
    let windowed = "window = { from = \"2022-06-13T00:00:00Z\" }\n[leverage]\n";
    assert_eq!(
        error(&format!("{windowed}max_loops = -1\n")),
        "s.toml:3:13: leverage.max_loops = -1: expected a whole number from 0 to 4294967295"
    );
    assert_eq!(
        error(&format!("{windowed}max_depth = 1\n")),
        "s.toml:3:1: unknown key leverage.max_depth (expected one of: max_loops, \
         looped_threshold_cut_bps, correlation)"
    );
    for cut in ["0", "10001"] {
        assert_eq!(
            error(&format!("{windowed}looped_threshold_cut_bps = {cut}\n")),
            format!(
                "s.toml:3:28: leverage.looped_threshold_cut_bps = {cut}: a cut is whole basis \
                 points from 1 to 10000 (10000 takes the whole threshold)"
            )
        );
    }
    assert_eq!(
        error(&format!(
            "{windowed}[leverage.correlation]\nETH = [\"WETH\"]\nETH2 = [\"weth\"]\n"
        )),
        "s.toml:5:8: leverage.correlation.ETH2 = [\"weth\"]: weth is already in group ETH: an \
         asset belongs to one group"
    );
    assert_eq!(
        error(&format!(
            "{windowed}[leverage.correlation]\nETH = \"WETH\"\n"
        )),
        "s.toml:4:7: leverage.correlation.ETH = \"WETH\": expected an array of strings, found a \
         string"
    );
    assert_eq!(
        error(&format!("{windowed}[leverage.correlation]\nETH = []\n")),
        "s.toml:4:7: leverage.correlation.ETH = []: a group lists at least one asset"
    );
}
