//! Deterministic seeding: a product catalog (monthly/yearly/quarterly/weekly/daily, metered,
//! tiered, one-time, EUR and JPY prices), coupons (percent/amount, once/repeating/forever), and
//! customers with a realistic subscription mix. The same seed gives the same ids and data.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::{
    CouponDuration, CustomerInput, Interval, ItemInput, Metadata, Recurring, SubscriptionInput,
    SubscriptionStatus, SubscriptionUpdate, Tier, UsageType,
};
use crate::store::{Account, Ctx, IdGen, NewCoupon, NewPrice, NewProduct};
use crate::world::World;

/// One company to mirror as a Stripe customer (e.g. from the HubSpot sandbox).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompanySeed {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedRequest {
    /// Defaults to the sandbox's `--seed`.
    pub seed: Option<u64>,
    /// Generated customers (default 0 if `companies` is given, else 25).
    pub customers: Option<usize>,
    /// Explicit customers, each given a subscription mix like the generated ones.
    pub companies: Vec<CompanySeed>,
    /// Target account (default: the platform account).
    pub account: Option<String>,
    pub livemode: bool,
    /// Customers are created up to this many days ago (default 400).
    pub days_back: Option<i64>,
    /// Send webhooks for the seeded events (default: record them only).
    pub deliver_webhooks: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeededPrice {
    pub id: String,
    pub lookup_key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeededSubscription {
    pub id: String,
    pub status: SubscriptionStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeededCustomer {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub subscriptions: Vec<SeededSubscription>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedReport {
    pub account: String,
    pub livemode: bool,
    pub prices: Vec<SeededPrice>,
    pub coupons: Vec<String>,
    pub customers: Vec<SeededCustomer>,
}

/// (lookup key, product, currency, unit amount, recurring (interval, count, usage)).
type PriceSpec = (
    &'static str,
    &'static str,
    &'static str,
    i64,
    Option<(Interval, u32, UsageType)>,
);

const PRICES: &[PriceSpec] = &[
    (
        "starter_monthly",
        "Starter",
        "usd",
        2_900,
        Some((Interval::Month, 1, UsageType::Licensed)),
    ),
    (
        "starter_yearly",
        "Starter",
        "usd",
        29_000,
        Some((Interval::Year, 1, UsageType::Licensed)),
    ),
    (
        "pro_monthly",
        "Pro",
        "usd",
        9_900,
        Some((Interval::Month, 1, UsageType::Licensed)),
    ),
    (
        "pro_quarterly",
        "Pro",
        "usd",
        27_900,
        Some((Interval::Month, 3, UsageType::Licensed)),
    ),
    (
        "pro_yearly",
        "Pro",
        "usd",
        99_000,
        Some((Interval::Year, 1, UsageType::Licensed)),
    ),
    (
        "pro_weekly",
        "Pro",
        "usd",
        2_500,
        Some((Interval::Week, 1, UsageType::Licensed)),
    ),
    (
        "pro_daily",
        "Pro",
        "usd",
        350,
        Some((Interval::Day, 1, UsageType::Licensed)),
    ),
    (
        "enterprise_monthly",
        "Enterprise",
        "usd",
        49_900,
        Some((Interval::Month, 1, UsageType::Licensed)),
    ),
    (
        "enterprise_biyearly",
        "Enterprise",
        "usd",
        1_000_000,
        Some((Interval::Year, 2, UsageType::Licensed)),
    ),
    (
        "pro_monthly_eur",
        "Pro",
        "eur",
        8_900,
        Some((Interval::Month, 1, UsageType::Licensed)),
    ),
    (
        "starter_monthly_jpy",
        "Starter",
        "jpy",
        3_000,
        Some((Interval::Month, 1, UsageType::Licensed)),
    ),
    (
        "api_calls_metered",
        "API calls",
        "usd",
        2,
        Some((Interval::Month, 1, UsageType::Metered)),
    ),
    ("onboarding_once", "Onboarding", "usd", 50_000, None),
];

/// Licensed USD plans a generated subscription picks from.
const PLANS: &[&str] = &[
    "starter_monthly",
    "starter_monthly",
    "starter_yearly",
    "pro_monthly",
    "pro_monthly",
    "pro_monthly",
    "pro_quarterly",
    "pro_yearly",
    "pro_weekly",
    "pro_daily",
    "enterprise_monthly",
    "enterprise_biyearly",
    "pro_seats_tiered",
];

/// (id, name, percent_off, amount_off, duration, duration_in_months).
type CouponSpec = (
    &'static str,
    &'static str,
    Option<f64>,
    Option<i64>,
    CouponDuration,
    Option<u32>,
);

const COUPONS: &[CouponSpec] = &[
    (
        "SBX_25_5_FOREVER",
        "25.5% off forever",
        Some(25.5),
        None,
        CouponDuration::Forever,
        None,
    ),
    (
        "SBX_20_3MONTHS",
        "20% off for 3 months",
        Some(20.0),
        None,
        CouponDuration::Repeating,
        Some(3),
    ),
    (
        "SBX_5USD_ONCE",
        "$5 off once",
        None,
        Some(500),
        CouponDuration::Once,
        None,
    ),
    (
        "SBX_50USD_FOREVER",
        "$50 off forever",
        None,
        Some(5_000),
        CouponDuration::Forever,
        None,
    ),
];

const NAME_A: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Wonka",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Aperture",
    "Gringotts",
    "Oscorp",
    "Pied Piper",
    "Dunder",
    "Monarch",
    "Nakatomi",
    "Massive",
];
const NAME_B: &[&str] = &[
    "Labs",
    "Industries",
    "Systems",
    "Holdings",
    "Analytics",
    "Logistics",
    "Foods",
    "Robotics",
    "Media",
    "Health",
];

fn status_roll(rng: &mut StdRng) -> SubscriptionStatus {
    match rng.gen_range(0..100) {
        0..=67 => SubscriptionStatus::Active,
        68..=75 => SubscriptionStatus::Trialing,
        76..=81 => SubscriptionStatus::PastDue,
        82..=88 => SubscriptionStatus::Canceled,
        89..=91 => SubscriptionStatus::Unpaid,
        92..=93 => SubscriptionStatus::Incomplete,
        94..=95 => SubscriptionStatus::IncompleteExpired,
        96..=97 => SubscriptionStatus::Paused,
        _ => SubscriptionStatus::Active,
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Creates the catalog once per account (found again by lookup key), returning its prices.
fn catalog(acct: &mut Account, ctx: &mut Ctx, created: i64) -> Result<Vec<SeededPrice>, ApiError> {
    let existing = |acct: &Account, key: &str| {
        acct.prices
            .iter()
            .find(|p| p.lookup_key.as_deref() == Some(key))
            .map(|p| p.id.clone())
    };
    let mut out = Vec::new();
    let mut products: Vec<(String, String)> = Vec::new();
    let mut product_id =
        |acct: &mut Account, ctx: &mut Ctx, name: &str| -> Result<String, ApiError> {
            if let Some((_, id)) = products.iter().find(|(n, _)| n == name) {
                return Ok(id.clone());
            }
            let found = acct
                .products
                .iter()
                .find(|p| p.name == name && !p.deleted)
                .map(|p| p.id.clone());
            let id = match found {
                Some(id) => id,
                None => acct.create_product(
                    ctx,
                    NewProduct {
                        id: None,
                        name: name.to_owned(),
                        description: None,
                        metadata: Metadata::new(),
                        created: Some(created),
                    },
                )?,
            };
            products.push((name.to_owned(), id.clone()));
            Ok(id)
        };
    for &(key, product, currency, amount, recurring) in PRICES {
        let id = match existing(acct, key) {
            Some(id) => id,
            None => {
                let product = product_id(acct, ctx, product)?;
                acct.create_price(
                    ctx,
                    NewPrice {
                        product,
                        currency: currency.to_owned(),
                        unit_amount: Some(amount),
                        unit_amount_decimal: None,
                        recurring: recurring.map(|(interval, interval_count, usage_type)| {
                            Recurring {
                                interval,
                                interval_count,
                                usage_type,
                            }
                        }),
                        tiers_mode: None,
                        tiers: Vec::new(),
                        transform_quantity: None,
                        tax_behavior: Some("exclusive".to_owned()),
                        nickname: Some(key.replace('_', " ")),
                        lookup_key: Some(key.to_owned()),
                        metadata: Metadata::new(),
                        created: Some(created),
                    },
                )?
            }
        };
        out.push(SeededPrice {
            id,
            lookup_key: key.to_owned(),
        });
    }
    let tiered_key = "pro_seats_tiered";
    let id = match existing(acct, tiered_key) {
        Some(id) => id,
        None => {
            let product = product_id(acct, ctx, "Pro")?;
            acct.create_price(
                ctx,
                NewPrice {
                    product,
                    currency: "usd".to_owned(),
                    unit_amount: None,
                    unit_amount_decimal: None,
                    recurring: Some(Recurring {
                        interval: Interval::Month,
                        interval_count: 1,
                        usage_type: UsageType::Licensed,
                    }),
                    tiers_mode: Some("graduated".to_owned()),
                    tiers: vec![
                        Tier {
                            up_to: Some(10),
                            unit_amount: Some(1_000),
                            flat_amount: Some(2_000),
                        },
                        Tier {
                            up_to: None,
                            unit_amount: Some(800),
                            flat_amount: None,
                        },
                    ],
                    transform_quantity: None,
                    tax_behavior: Some("exclusive".to_owned()),
                    nickname: Some("pro seats tiered".to_owned()),
                    lookup_key: Some(tiered_key.to_owned()),
                    metadata: Metadata::new(),
                    created: Some(created),
                },
            )?
        }
    };
    out.push(SeededPrice {
        id,
        lookup_key: tiered_key.to_owned(),
    });
    Ok(out)
}

fn coupons(acct: &mut Account, ctx: &mut Ctx, created: i64) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for &(id, name, percent_off, amount_off, duration, months) in COUPONS {
        if acct.coupons.get(id).is_none() {
            acct.create_coupon(
                ctx,
                NewCoupon {
                    id: Some(id.to_owned()),
                    name: Some(name.to_owned()),
                    percent_off,
                    amount_off,
                    currency: amount_off.map(|_| "usd".to_owned()),
                    duration,
                    duration_in_months: months,
                    applies_to_products: None,
                    metadata: Metadata::new(),
                    created: Some(created),
                },
            )?;
        }
        out.push(id.to_owned());
    }
    Ok(out)
}

fn price_of(prices: &[SeededPrice], key: &str) -> String {
    prices
        .iter()
        .find(|p| p.lookup_key == key)
        .map(|p| p.id.clone())
        .unwrap_or_default()
}

/// Seeds `request` into the world; events are recorded with backdated `created` times.
pub fn seed(world: &mut World, request: &SeedRequest) -> Result<SeedReport, ApiError> {
    let seed = request.seed.unwrap_or(world.config.seed);
    let account_id = request
        .account
        .clone()
        .unwrap_or_else(|| world.config.platform_account.clone());
    let livemode = request.livemode;
    let generated = request
        .customers
        .unwrap_or(if request.companies.is_empty() { 25 } else { 0 });
    let days_back = request.days_back.unwrap_or(400).max(1);
    world.begin(None);
    let now = world.now();
    let (acct, ctx) = world.account_and_ctx(&account_id, livemode);
    let already = u64::try_from(acct.customers.len()).unwrap_or(0);
    let mut rng =
        StdRng::seed_from_u64(seed ^ fnv(&account_id) ^ already.wrapping_mul(0x9e37_79b9));
    let saved_ids = std::mem::replace(&mut ctx.ids, IdGen::new(rng.r#gen()));
    let result = seed_into(acct, ctx, &mut rng, request, generated, days_back, now);
    ctx.ids = saved_ids;
    ctx.now = now;
    if !request.deliver_webhooks {
        ctx.outbox.clear();
    }
    let (prices, coupons, customers) = result?;
    world.enqueue_outbox();
    Ok(SeedReport {
        account: account_id,
        livemode,
        prices,
        coupons,
        customers,
    })
}

type Seeded = (Vec<SeededPrice>, Vec<String>, Vec<SeededCustomer>);

fn seed_into(
    acct: &mut Account,
    ctx: &mut Ctx,
    rng: &mut StdRng,
    request: &SeedRequest,
    generated: usize,
    days_back: i64,
    now: i64,
) -> Result<Seeded, ApiError> {
    let start = now - days_back * 86_400;
    ctx.now = start - 86_400;
    let prices = catalog(acct, ctx, start - 86_400)?;
    let coupon_ids = coupons(acct, ctx, start - 86_400)?;
    let mut companies: Vec<CompanySeed> = request.companies.clone();
    let offset = acct.customers.len();
    for i in 0..generated {
        let name = format!(
            "{} {} {}",
            NAME_A[rng.gen_range(0..NAME_A.len())],
            NAME_B[rng.gen_range(0..NAME_B.len())],
            offset + i + 1
        );
        let slug: String = name
            .to_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let mut metadata = Metadata::new();
        metadata.insert(
            "segment".to_owned(),
            ["smb", "mid_market", "enterprise"][rng.gen_range(0..3)].to_owned(),
        );
        companies.push(CompanySeed {
            email: Some(format!("billing@{slug}.example.com")),
            name,
            metadata,
        });
    }
    // Creation times ascending, so insertion order matches `created`.
    let mut times: Vec<i64> = companies
        .iter()
        .map(|_| start + rng.gen_range(0..days_back * 86_400 - 3_600))
        .collect();
    times.sort_unstable();
    let mut out = Vec::with_capacity(companies.len());
    for (company, created) in companies.into_iter().zip(times) {
        ctx.now = created;
        let id = acct.create_customer(
            ctx,
            CustomerInput {
                name: Some(company.name.clone()),
                email: company.email.clone(),
                metadata: Some(company.metadata.clone()),
                created: Some(created),
                ..CustomerInput::default()
            },
        )?;
        let subscriptions =
            seed_subscriptions(acct, ctx, rng, &prices, &coupon_ids, &id, created, now)?;
        out.push(SeededCustomer {
            id,
            name: company.name,
            email: company.email,
            subscriptions,
        });
    }
    Ok((prices, coupon_ids, out))
}

#[allow(clippy::too_many_arguments)]
fn seed_subscriptions(
    acct: &mut Account,
    ctx: &mut Ctx,
    rng: &mut StdRng,
    prices: &[SeededPrice],
    coupon_ids: &[String],
    customer: &str,
    created: i64,
    now: i64,
) -> Result<Vec<SeededSubscription>, ApiError> {
    let mut out = Vec::new();
    if rng.gen_range(0..100) < 3 {
        return Ok(out);
    }
    // Some customers churned from an older plan before their current one.
    let count = if rng.gen_range(0..100) < 10 { 2 } else { 1 };
    for n in 0..count {
        let status = if count == 2 && n == 0 {
            SubscriptionStatus::Canceled
        } else {
            status_roll(rng)
        };
        let currency_roll = rng.gen_range(0..100);
        let plan_key = match currency_roll {
            0..=3 => "pro_monthly_eur",
            4..=5 => "starter_monthly_jpy",
            _ => PLANS[rng.gen_range(0..PLANS.len())],
        };
        let usd = currency_roll > 5;
        let seats = plan_key.starts_with("pro") || plan_key.starts_with("enterprise");
        let mut items = vec![ItemInput {
            price: price_of(prices, plan_key),
            quantity: Some(if seats { rng.gen_range(1..=25) } else { 1 }),
            coupons: Vec::new(),
        }];
        if usd && plan_key.ends_with("monthly") && rng.gen_range(0..100) < 15 {
            items.push(ItemInput {
                price: price_of(prices, "api_calls_metered"),
                quantity: None,
                coupons: Vec::new(),
            });
        }
        let coupons = if usd && rng.gen_range(0..100) < 15 {
            vec![coupon_ids[rng.gen_range(0..coupon_ids.len())].clone()]
        } else {
            Vec::new()
        };
        let sub_created = (created + rng.gen_range(0..3_600 * 24)).min(now - 60);
        ctx.now = sub_created;
        let trialing = status == SubscriptionStatus::Trialing;
        let id = acct.create_subscription(
            ctx,
            SubscriptionInput {
                customer: customer.to_owned(),
                items,
                coupons,
                trial_period_days: trialing.then_some(30),
                cancel_at_period_end: status == SubscriptionStatus::Active
                    && rng.gen_range(0..100) < 8,
                status: match status {
                    SubscriptionStatus::Canceled
                    | SubscriptionStatus::Active
                    | SubscriptionStatus::Trialing
                    | SubscriptionStatus::Paused => None,
                    SubscriptionStatus::IncompleteExpired => Some(SubscriptionStatus::Incomplete),
                    other => Some(other),
                },
                metadata: None,
                collection_method: None,
                created: Some(sub_created),
            },
        )?;
        match status {
            SubscriptionStatus::Canceled => {
                ctx.now = (sub_created + rng.gen_range(1..120) * 86_400).min(now - 30);
                acct.cancel_subscription(ctx, &id)?;
            }
            SubscriptionStatus::IncompleteExpired | SubscriptionStatus::Paused => {
                ctx.now = (sub_created
                    + if status == SubscriptionStatus::Paused {
                        40 * 86_400
                    } else {
                        86_400
                    })
                .min(now - 30);
                acct.update_subscription(
                    ctx,
                    &id,
                    SubscriptionUpdate {
                        status: Some(status),
                        ..Default::default()
                    },
                )?;
            }
            _ => {}
        }
        out.push(SeededSubscription { id, status });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SandboxConfig;

    type Snapshot = Vec<(String, Option<String>, Vec<(String, SubscriptionStatus)>)>;

    fn snapshot(world: &World) -> Snapshot {
        let acct = world
            .account(&world.config.platform_account, false)
            .unwrap();
        acct.customers
            .iter()
            .map(|c| {
                let subs = acct
                    .subscriptions
                    .iter()
                    .filter(|s| s.customer == c.id)
                    .map(|s| (s.id.clone(), s.status))
                    .collect();
                (c.id.clone(), c.name.clone(), subs)
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_customers_and_subscriptions() {
        let run = |seed| {
            let mut world = World::new(SandboxConfig::default());
            seed_fn(&mut world, seed);
            snapshot(&world)
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    fn seed_fn(world: &mut World, seed: u64) {
        let report = super::seed(
            world,
            &SeedRequest {
                seed: Some(seed),
                customers: Some(60),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(report.customers.len(), 60);
    }

    #[test]
    fn a_seeded_mix_covers_every_status_and_several_intervals() {
        let mut world = World::new(SandboxConfig::default());
        super::seed(
            &mut world,
            &SeedRequest {
                seed: Some(1),
                customers: Some(300),
                ..Default::default()
            },
        )
        .unwrap();
        let acct = world
            .account(&world.config.platform_account, false)
            .unwrap();
        for status in SubscriptionStatus::ALL {
            assert!(
                acct.subscriptions.iter().any(|s| s.status == status),
                "{status:?} missing"
            );
        }
        assert!(acct.subscriptions.iter().any(|s| !s.discounts.is_empty()));
        assert!(
            acct.subscriptions
                .iter()
                .any(|s| s.items.iter().any(|i| i.quantity.is_none())),
            "metered item"
        );
        assert!(acct.subscriptions.iter().any(|s| s.cancel_at_period_end));
    }

    #[test]
    fn explicit_companies_become_customers_with_their_metadata_and_seeding_twice_adds_more() {
        let mut world = World::new(SandboxConfig::default());
        let mut metadata = Metadata::new();
        metadata.insert("hubspot_company_id".to_owned(), "1001".to_owned());
        let request = SeedRequest {
            companies: vec![CompanySeed {
                name: "Acme Corp".into(),
                email: Some("ap@acme.test".into()),
                metadata,
            }],
            ..Default::default()
        };
        let first = super::seed(&mut world, &request).unwrap();
        let second = super::seed(&mut world, &request).unwrap();
        assert_eq!(first.customers.len(), 1);
        assert_ne!(first.customers[0].id, second.customers[0].id);
        assert_eq!(first.prices, second.prices, "the catalog is reused");
        let acct = world
            .account(&world.config.platform_account, false)
            .unwrap();
        let c = acct.customers.get(&first.customers[0].id).unwrap();
        assert_eq!(
            c.metadata.get("hubspot_company_id").map(String::as_str),
            Some("1001")
        );
    }
}
