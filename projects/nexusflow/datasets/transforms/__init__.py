"""Per-frame transforms of the track + map pipeline."""
from .formatting import PackTrackMapInputs
from .loading import LoadMultiViewImages, ResizeMultiViewImages
from .map_gt import LoadMapAnnotations
from .track_gt import LoadTrackAnnotations3D, TrackObjectRangeFilter

__all__ = ['LoadMultiViewImages', 'ResizeMultiViewImages', 'LoadTrackAnnotations3D', 'TrackObjectRangeFilter',
           'LoadMapAnnotations', 'PackTrackMapInputs']
