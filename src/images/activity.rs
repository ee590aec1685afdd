//! What is happening to each stored image right now: renditions being made from its files and
//! deletes under way, so a delete never removes files a rendition is reading or about to write
//! (its disk cache), and a rendition never starts on an image being deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::ImageError;

/// The images in use, by id; an id is absent when nothing is happening to it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Activity(Arc<Mutex<HashMap<String, Use>>>);

#[derive(Debug, Default)]
struct Use {
    renders: usize,
    deleting: bool,
}

/// A rendition of one image in progress; dropping it ends it.
#[derive(Debug)]
pub(crate) struct Rendering {
    activity: Activity,
    id: String,
}

/// A delete of one image in progress; dropping it ends it.
#[derive(Debug)]
pub(crate) struct Deleting {
    activity: Activity,
    id: String,
}

impl Activity {
    /// Starts a rendition of `id`; refused as [`ImageError::NotFound`] while `id` is being
    /// deleted, since the image is as good as gone.
    pub(crate) fn render(&self, id: &str) -> Result<Rendering, ImageError> {
        let mut map = self.0.lock().expect("activity lock");
        let entry = map.entry(id.to_owned()).or_default();
        if entry.deleting {
            return Err(ImageError::NotFound);
        }
        entry.renders += 1;
        Ok(Rendering { activity: self.clone(), id: id.to_owned() })
    }

    /// Starts a delete of `id`; refused while a rendition of it or another delete runs: the
    /// first would write into a directory being removed, the second would race the first.
    pub(crate) fn delete(&self, id: &str) -> Result<Deleting, ImageError> {
        let mut map = self.0.lock().expect("activity lock");
        let entry = map.entry(id.to_owned()).or_default();
        if entry.deleting {
            return Err(ImageError::InUse("the image is being deleted already"));
        }
        if entry.renders > 0 {
            return Err(ImageError::InUse(
                "the image is being processed (a size is being made); retry shortly",
            ));
        }
        entry.deleting = true;
        Ok(Deleting { activity: self.clone(), id: id.to_owned() })
    }

    /// Ends one use of `id` and forgets the id once nothing uses it, so the map holds only the
    /// images in use.
    fn end(&self, id: &str, ended: impl FnOnce(&mut Use)) {
        let mut map = self.0.lock().expect("activity lock");
        if let Some(entry) = map.get_mut(id) {
            ended(entry);
            if entry.renders == 0 && !entry.deleting {
                map.remove(id);
            }
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.0.lock().expect("activity lock").len()
    }
}

impl Drop for Rendering {
    fn drop(&mut self) {
        self.activity.end(&self.id, |u| u.renders -= 1);
    }
}

impl Drop for Deleting {
    fn drop(&mut self) {
        self.activity.end(&self.id, |u| u.deleting = false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delete_waits_for_no_rendition_and_shuts_new_ones_out() {
        let activity = Activity::default();
        let rendering = activity.render("a").unwrap();
        let second = activity.render("a").unwrap();
        assert!(matches!(activity.delete("a"), Err(ImageError::InUse(_))));
        assert!(activity.delete("b").is_ok(), "other images are free");
        drop(rendering);
        assert!(matches!(activity.delete("a"), Err(ImageError::InUse(_))), "one rendition still runs");
        drop(second);
        let deleting = activity.delete("a").unwrap();
        assert!(matches!(activity.render("a"), Err(ImageError::NotFound)));
        assert!(matches!(activity.delete("a"), Err(ImageError::InUse(_))));
        drop(deleting);
        assert_eq!(activity.tracked(), 0, "nothing in use, nothing kept");
        assert!(activity.render("a").is_ok());
    }
}
