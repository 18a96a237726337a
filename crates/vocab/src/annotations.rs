//! Annotated images and predictions: what the analysis takes.

use serde::Serialize;

use crate::factor::{Factor, FactorSet, Metaclass};
use crate::{Error, Result};

/// Number of factors.
pub const N_FACTORS: usize = Factor::ALL.len();
/// Number of metaclasses (16 named ones and `other`).
pub const N_METACLASSES: usize = Metaclass::ALL.len();

/// One annotated image, as the analysis sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotatedImage {
    /// The annotated (true) ImageNet-1k class.
    pub class: u16,
    /// The factors of variation annotated for the image.
    pub factors: FactorSet,
    /// The ImageNet ReaL labels of the image: `None` when ReaL has no entry for it (train
    /// images), `Some(empty)` when ReaL's raters found no valid label.
    pub real: Option<Box<[u16]>>,
}

/// The annotated images of one partition and factor selection, with the class → metaclass
/// mapping. Built once; every model is analysed against it.
#[derive(Debug, Clone)]
pub struct Annotations {
    images: Vec<AnnotatedImage>,
    metaclass_of_image: Vec<Metaclass>,
    class_metaclass: Vec<Metaclass>,
    /// Images with each factor, per metaclass (the same for every model, so counted once).
    metaclass_factor_totals: [[u64; N_FACTORS]; N_METACLASSES],
}

impl Annotations {
    /// Builds the annotation set. `class_metaclass[c]` is the metaclass of class `c`; every
    /// image's class must have one.
    pub fn new(images: Vec<AnnotatedImage>, class_metaclass: Vec<Metaclass>) -> Result<Self> {
        let mut metaclass_of_image = Vec::with_capacity(images.len());
        for (index, image) in images.iter().enumerate() {
            let metaclass =
                class_metaclass
                    .get(usize::from(image.class))
                    .ok_or(Error::ClassOutOfRange {
                        what: "annotated image",
                        index,
                        class: image.class,
                        classes: class_metaclass.len(),
                    })?;
            metaclass_of_image.push(*metaclass);
        }
        let mut metaclass_factor_totals = [[0u64; N_FACTORS]; N_METACLASSES];
        for (image, metaclass) in images.iter().zip(&metaclass_of_image) {
            for factor in image.factors.iter() {
                metaclass_factor_totals[metaclass.index()][factor.index()] += 1;
            }
        }
        Ok(Annotations {
            images,
            metaclass_of_image,
            class_metaclass,
            metaclass_factor_totals,
        })
    }

    /// The annotated images, in annotation-file order.
    pub fn images(&self) -> &[AnnotatedImage] {
        &self.images
    }

    /// Number of annotated images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there are no annotated images.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Number of classes in the class → metaclass mapping.
    pub fn n_classes(&self) -> usize {
        self.class_metaclass.len()
    }

    /// The metaclass of image `index`.
    pub fn metaclass_of(&self, index: usize) -> Metaclass {
        self.metaclass_of_image[index]
    }

    /// The metaclass of class `class`, if the mapping has it.
    pub fn class_metaclass(&self, class: u16) -> Option<Metaclass> {
        self.class_metaclass.get(usize::from(class)).copied()
    }

    /// The predictions of the toolkit's `human` model: the annotated class, probability 1.
    pub fn human_predictions(&self) -> Vec<Option<Prediction>> {
        self.images
            .iter()
            .map(|image| {
                Some(Prediction {
                    class: image.class,
                    probability: 1.0,
                })
            })
            .collect()
    }
}

/// A model's top-1 prediction for one image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    /// The predicted ImageNet-1k class.
    pub class: u16,
    /// The model's probability for that class, in [0, 1].
    pub probability: f64,
}

impl Annotations {
    /// Per metaclass, how many annotated images have each factor (over all annotations,
    /// whatever a model predicted: the toolkit's `compute_metaclass_prevalence` basis).
    pub fn metaclass_factor_totals(&self) -> [[u64; N_FACTORS]; N_METACLASSES] {
        self.metaclass_factor_totals
    }

    /// How many annotated images have each factor.
    pub fn factor_totals(&self) -> [u64; N_FACTORS] {
        let mut totals = [0u64; N_FACTORS];
        for image in &self.images {
            for factor in image.factors.iter() {
                totals[factor.index()] += 1;
            }
        }
        totals
    }
}
