//! Occupancy per client address: how many of something (open connections,
//! requests in their handlers) each client holds, against a cap per client
//! and a cap in total, so that one address cannot take everything.
//!
//! [`Table`] is the bookkeeping alone (no IO, no clock, no locks): `take`
//! says yes or why not, `give_back` returns what was taken. An address is
//! tracked only while it holds something, so the table never holds more
//! addresses than its total cap. [`Occupancy`] shares a table between
//! tasks and gives each success back when its [`Held`] is dropped.
//!
//! A trusted proxy carries many clients: its connections are taken with
//! [`Table::take_uncapped`], within the total alone.
//!
//! Clients are keyed by [`client_key`]: an IPv4 address, or the /64 an IPv6
//! address lies in (one host usually has a whole /64 to pick from).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Why [`Table::take`] said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// This client holds its cap.
    Client,
    /// All clients together hold the total cap.
    Total,
}

/// The key of a client address: IPv4 addresses (also when mapped into
/// IPv6) as they are, IPv6 addresses by their /64.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The bookkeeping: what each client holds, against the caps.
#[derive(Debug)]
pub(crate) struct Table {
    per_client: usize,
    total: usize,
    held: HashMap<IpAddr, usize>,
    sum: usize,
}

impl Table {
    /// At most `per_client` per client key and `total` in all (each at
    /// least 1).
    pub(crate) fn new(per_client: usize, total: usize) -> Self {
        Self {
            per_client: per_client.max(1),
            total: total.max(1),
            held: HashMap::new(),
            sum: 0,
        }
    }

    /// Takes one for `client` (a [`client_key`]), or says which cap is
    /// reached. The client's own cap is checked first, so a client at its
    /// cap is told so even when the gateway is full too.
    pub(crate) fn take(&mut self, client: IpAddr) -> Result<(), Full> {
        let mine = self.held.get(&client).copied().unwrap_or(0);
        if mine >= self.per_client {
            return Err(Full::Client);
        }
        if self.sum >= self.total {
            return Err(Full::Total);
        }
        *self.held.entry(client).or_insert(0) += 1;
        self.sum += 1;
        Ok(())
    }

    /// Takes one for `client` without its own cap (a trusted proxy, which
    /// carries many clients), within the total alone.
    pub(crate) fn take_uncapped(&mut self, client: IpAddr) -> Result<(), Full> {
        if self.sum >= self.total {
            return Err(Full::Total);
        }
        *self.held.entry(client).or_insert(0) += 1;
        self.sum += 1;
        Ok(())
    }

    /// Gives back one that `client` took; forgets the client when it holds
    /// nothing more.
    pub(crate) fn give_back(&mut self, client: IpAddr) {
        if let Some(n) = self.held.get_mut(&client) {
            *n -= 1;
            self.sum -= 1;
            if *n == 0 {
                self.held.remove(&client);
            }
        }
    }

    /// What `client` holds.
    #[cfg(test)]
    pub(crate) fn held_by(&self, client: IpAddr) -> usize {
        self.held.get(&client).copied().unwrap_or(0)
    }

    /// What all clients hold.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.sum
    }

    /// The clients holding something.
    #[cfg(test)]
    pub(crate) fn clients(&self) -> usize {
        self.held.len()
    }
}

/// A [`Table`] shared between tasks. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Occupancy {
    table: Arc<Mutex<Table>>,
}

/// One taken from an [`Occupancy`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Held {
    table: Arc<Mutex<Table>>,
    client: IpAddr,
}

impl Occupancy {
    /// At most `per_client` per client and `total` in all.
    pub(crate) fn new(per_client: usize, total: usize) -> Self {
        Self {
            table: Arc::new(Mutex::new(Table::new(per_client, total))),
        }
    }

    /// Takes one for the client at `ip` until the answer is dropped.
    pub(crate) fn take(&self, ip: IpAddr) -> Result<Held, Full> {
        let client = client_key(ip);
        lock(&self.table).take(client)?;
        Ok(Held {
            table: self.table.clone(),
            client,
        })
    }

    /// Takes one for `ip` within the total alone (see
    /// [`Table::take_uncapped`]) until the answer is dropped.
    pub(crate) fn take_uncapped(&self, ip: IpAddr) -> Result<Held, Full> {
        let client = client_key(ip);
        lock(&self.table).take_uncapped(client)?;
        Ok(Held {
            table: self.table.clone(),
            client,
        })
    }

    /// What all clients hold now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        lock(&self.table).held()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        lock(&self.table).give_back(self.client);
    }
}

/// The table stays consistent whatever panicked while it was locked (every
/// change is one step), so a poisoned lock is used as it is.
fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_client_cannot_take_everything() {
        let mut t = Table::new(2, 3);
        let (a, b, c) = (ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3"));
        assert_eq!(t.take(a), Ok(()));
        assert_eq!(t.take(a), Ok(()));
        assert_eq!(t.take(a), Err(Full::Client), "a is at its cap");
        assert_eq!(t.take(b), Ok(()), "b still gets one");
        assert_eq!(t.take(c), Err(Full::Total), "the total is reached");
        assert_eq!(t.take(a), Err(Full::Client), "a's own cap is named first");
        t.give_back(a);
        assert_eq!(t.take(c), Ok(()));
        assert_eq!((t.held(), t.held_by(a), t.clients()), (3, 1, 3));
    }

    #[test]
    fn clients_are_forgotten_when_they_hold_nothing() {
        let mut t = Table::new(4, 100);
        for i in 0..50u8 {
            t.take(ip(&format!("10.0.1.{i}"))).unwrap();
        }
        assert_eq!(t.clients(), 50);
        for i in 0..50u8 {
            t.give_back(ip(&format!("10.0.1.{i}")));
        }
        assert_eq!((t.clients(), t.held()), (0, 0));
        // Giving back what was never taken changes nothing.
        t.give_back(ip("10.0.0.9"));
        assert_eq!(t.held(), 0);
    }

    #[test]
    fn never_tracks_more_clients_than_the_total() {
        let mut t = Table::new(1, 10);
        let mut taken = 0;
        for i in 0..=255u8 {
            if t.take(ip(&format!("10.0.2.{i}"))).is_ok() {
                taken += 1;
            }
        }
        assert_eq!((taken, t.clients()), (10, 10));
    }

    #[test]
    fn an_uncapped_client_is_held_to_the_total_only() {
        let mut t = Table::new(2, 5);
        let (proxy, other) = (ip("10.0.0.1"), ip("10.0.0.2"));
        for _ in 0..4 {
            assert_eq!(t.take_uncapped(proxy), Ok(()));
        }
        assert_eq!(t.held_by(proxy), 4, "past the per-client cap of 2");
        assert_eq!(t.take(proxy), Err(Full::Client), "capped when asked to be");
        assert_eq!(t.take(other), Ok(()));
        assert_eq!(t.take_uncapped(proxy), Err(Full::Total));
        t.give_back(proxy);
        assert_eq!(t.take_uncapped(proxy), Ok(()));
        for _ in 0..4 {
            t.give_back(proxy);
        }
        assert_eq!((t.held(), t.clients()), (1, 1));
    }

    #[test]
    fn zero_caps_mean_one() {
        let mut t = Table::new(0, 0);
        assert_eq!(t.take(ip("10.0.0.1")), Ok(()));
        assert_eq!(t.take(ip("10.0.0.2")), Err(Full::Total));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_slash_64() {
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:ffff::7"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(client_key(ip("10.1.2.3")), ip("10.1.2.3"));
    }

    #[test]
    fn held_is_given_back_on_drop() {
        let o = Occupancy::new(1, 10);
        let first = o.take(ip("2001:db8::1")).unwrap();
        assert_eq!(
            o.take(ip("2001:db8::2")).unwrap_err(),
            Full::Client,
            "the same /64"
        );
        drop(first);
        assert_eq!(o.held(), 0);
        let _again = o.take(ip("2001:db8::2")).unwrap();
        assert_eq!(o.held(), 1);
    }
}
