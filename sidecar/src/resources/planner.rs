//! The planner: a resource's free capacity over time, and whether a booking fits without
//! over-booking.
//!
//! Bookings that hold capacity ([`super::booking::State::holds_capacity`]: confirmed up to settled) count
//! against the resource's capacity wherever their windows overlap; requested and cancelled
//! ones do not. The free capacity is piecewise constant between the ends of availability
//! windows and bookings, which is what [`availability`] returns (the answer to a partner's
//! planner request).

use super::booking::Booking;
use super::ids::BookingId;
use super::resource::Resource;
use super::window::Window;
use crate::time::Timestamp;

/// A span of constant free capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub window: Window,
    /// Units that can still be booked throughout the window.
    pub free: u64,
}

/// Why a booking does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the window is not inside one availability window of the resource")]
    OutsideAvailability,
    #[error("{asked} units asked; only {free} are free throughout the window")]
    OverCapacity { asked: u64, free: u64 },
}

fn holding<'a>(
    resource: &'a Resource,
    bookings: &'a [Booking],
    exclude: Option<&'a BookingId>,
) -> impl Iterator<Item = &'a Booking> + 'a {
    bookings.iter().filter(move |b| {
        b.state.holds_capacity()
            && b.resource.owner == resource.owner
            && b.resource.id == resource.id
            && exclude != Some(&b.id)
    })
}

fn slots(
    resource: &Resource,
    bookings: &[Booking],
    span: Window,
    exclude: Option<&BookingId>,
) -> Vec<Slot> {
    let mut out: Vec<Slot> = Vec::new();
    for aw in &resource.availability {
        let Some(part) = aw.intersect(&span) else {
            continue;
        };
        let mut points = vec![part.start(), part.end()];
        for b in holding(resource, bookings, exclude) {
            for p in [b.window.start(), b.window.end()] {
                if part.contains(p) {
                    points.push(p);
                }
            }
        }
        points.sort();
        points.dedup();
        for pair in points.windows(2) {
            let Some(seg) = Window::new(pair[0], pair[1]) else {
                continue;
            };
            let load: u64 = holding(resource, bookings, exclude)
                .filter(|b| b.window.overlaps(&seg))
                .map(|b| b.units)
                .fold(0, u64::saturating_add);
            let free = resource.capacity.saturating_sub(load);
            match out.last_mut() {
                Some(last) if last.free == free && last.window.end() == seg.start() => {
                    last.window =
                        Window::new(last.window.start(), seg.end()).unwrap_or(last.window);
                }
                _ => out.push(Slot { window: seg, free }),
            }
        }
    }
    out
}

/// The free capacity of `resource` between `from` and `to`, given `bookings` (of any
/// resources: others are ignored). Times outside every availability window are absent.
pub fn availability(
    resource: &Resource,
    bookings: &[Booking],
    from: Timestamp,
    to: Timestamp,
) -> Vec<Slot> {
    match Window::new(from, to) {
        Some(span) => slots(resource, bookings, span, None),
        None => Vec::new(),
    }
}

/// Whether `units` more over `window` fit `resource` beside `bookings` (ignoring the booking
/// `exclude`, the one being admitted when it is already stored).
pub fn admit(
    resource: &Resource,
    bookings: &[Booking],
    window: &Window,
    units: u64,
    exclude: Option<&BookingId>,
) -> Result<(), PlanError> {
    if resource.window_covering(window).is_none() {
        return Err(PlanError::OutsideAvailability);
    }
    let free = slots(resource, bookings, *window, exclude)
        .iter()
        .map(|s| s.free)
        .min()
        .unwrap_or(0);
    if units > free {
        return Err(PlanError::OverCapacity { asked: units, free });
    }
    Ok(())
}

/// The most units held at one time over `window` (a check of the planner's promise).
pub fn peak_load(resource: &Resource, bookings: &[Booking], window: &Window) -> u64 {
    let mut points: Vec<Timestamp> = vec![window.start()];
    for b in holding(resource, bookings, None) {
        points.extend([b.window.start(), b.window.end()]);
    }
    points
        .into_iter()
        .filter(|t| window.contains(*t))
        .map(|t| {
            holding(resource, bookings, None)
                .filter(|b| b.window.contains(t))
                .map(|b| b.units)
                .fold(0, u64::saturating_add)
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::booking::tests::parties;
    use crate::resources::booking::Action;
    use crate::resources::resource::tests::w;

    #[test]
    fn free_capacity_is_piecewise_and_only_confirmed_bookings_count() {
        let p = parties();
        // Capacity 8; availability [1000,10000) and [20000,30000).
        let confirm = |b: Booking| {
            b.step(&p.provider(), &Action::Confirm, Timestamp::from_millis(1))
                .unwrap()
        };
        let a = confirm(p.booking(1, w(2_000, 4_000), 3));
        let b = confirm(p.booking(2, w(3_000, 5_000), 4));
        let requested = p.booking(3, w(1_000, 9_000), 8);
        let all = vec![a, b, requested];
        let slots = availability(
            &p.resource,
            &all,
            Timestamp::from_millis(0),
            Timestamp::from_millis(25_000),
        );
        let got: Vec<(u64, u64, u64)> = slots
            .iter()
            .map(|s| {
                (
                    s.window.start().as_millis(),
                    s.window.end().as_millis(),
                    s.free,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1_000, 2_000, 8),
                (2_000, 3_000, 5),
                (3_000, 4_000, 1),
                (4_000, 5_000, 4),
                (5_000, 10_000, 8),
                (20_000, 25_000, 8),
            ]
        );
        assert_eq!(admit(&p.resource, &all, &w(3_500, 4_500), 1, None), Ok(()));
        assert_eq!(
            admit(&p.resource, &all, &w(3_500, 4_500), 2, None),
            Err(PlanError::OverCapacity { asked: 2, free: 1 })
        );
        assert_eq!(
            admit(&p.resource, &all, &w(9_000, 21_000), 1, None),
            Err(PlanError::OutsideAvailability)
        );
        // Touching windows do not overlap.
        assert_eq!(admit(&p.resource, &all, &w(5_000, 6_000), 8, None), Ok(()));
        assert_eq!(peak_load(&p.resource, &all, &w(0, 30_000)), 7);
        assert!(availability(
            &p.resource,
            &all,
            Timestamp::from_millis(5),
            Timestamp::from_millis(5)
        )
        .is_empty());
    }
}
