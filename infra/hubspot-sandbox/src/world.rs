//! All mutable state behind one lock, and the handle the HTTP layer and the webhook sender share.

use std::sync::{Mutex, MutexGuard};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::clock::now_ms;
use crate::config::SandboxConfig;
use crate::counters::Counters;
use crate::oauth::OAuthState;
use crate::ratelimit::RateLimiter;
use crate::seed;
use crate::store::Store;
use crate::webhooks::Outbox;

pub struct World {
    /// The configuration the sandbox started with (what `reset` returns to).
    pub initial: SandboxConfig,
    pub config: SandboxConfig,
    /// Drives tokens and fault decisions; reseeded with the data.
    pub rng: StdRng,
    pub store: Store,
    pub oauth: OAuthState,
    pub limiter: RateLimiter,
    pub counters: Counters,
    pub outbox: Outbox,
}

impl World {
    pub fn new(config: SandboxConfig) -> Self {
        let mut world = Self {
            rng: StdRng::seed_from_u64(config.seed),
            store: Store::default(),
            oauth: OAuthState::default(),
            limiter: RateLimiter::default(),
            counters: Counters {
                since_ms: now_ms(),
                ..Counters::default()
            },
            outbox: Outbox::new(config.seed),
            initial: config.clone(),
            config,
        };
        let (seed, companies, contacts) = (
            world.config.seed,
            world.config.companies,
            world.config.contacts,
        );
        world.reseed(seed, companies, contacts);
        world
    }

    /// Replaces the CRM data; tokens, faults and webhook settings stay.
    pub fn reseed(&mut self, seed: u64, companies: usize, contacts: usize) {
        self.config.seed = seed;
        self.config.companies = companies;
        self.config.contacts = contacts;
        self.rng = StdRng::seed_from_u64(seed);
        seed::populate(&mut self.store, seed, companies, contacts);
        self.outbox.clear();
    }

    /// True with probability `rate` (0 never draws, so a zero rate costs no randomness).
    pub fn roll(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.gen_bool(rate.clamp(0.0, 1.0))
    }

    /// Turns what the last mutations recorded into webhook events.
    pub fn publish_events(&mut self) {
        let drafts = std::mem::take(&mut self.store.events);
        for draft in drafts {
            let Some(event) = crate::webhooks::to_event(&draft, &self.config, &mut self.outbox)
            else {
                continue;
            };
            if self.roll(self.config.faults.webhook_drop_rate) {
                self.outbox.stats.dropped_by_fault += 1;
                continue;
            }
            self.outbox.enqueue(event, draft.occurred_ms.max(now_ms()));
        }
    }
}

pub struct Shared {
    world: Mutex<World>,
    /// Wakes the background webhook sender.
    pub wake: tokio::sync::Notify,
    /// One delivery run at a time (background sender or flush).
    pub delivery: tokio::sync::Mutex<()>,
    pub http: reqwest::Client,
}

impl Shared {
    pub fn new(config: SandboxConfig) -> Self {
        Self {
            world: Mutex::new(World::new(config)),
            wake: tokio::sync::Notify::new(),
            delivery: tokio::sync::Mutex::new(()),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap_or_default(),
        }
    }

    /// The state; a panic elsewhere while holding the lock does not make it unusable.
    pub fn lock(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
