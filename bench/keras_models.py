"""The three models of the Keras example "Image classification with modern MLP models"
(keras.io/examples/vision/mlp_image_classification, Keras 3 version; restated in
docs/reference.md), layer for layer, minus the data augmentation: Tessera's data
pipeline does that before the model, and neither measurement times it.

One definition for both users, so that what is timed is what is checked:
- bench/keras_reference.py times training steps of `build(name)` (Keras on TensorFlow);
- packages/models/src/__fixtures__/keras_reference.py loads Tessera's weights into `build(name)`
  and records the golden logits that packages/models/src/reference.test.ts compares against.

Importing this module imports Keras, which picks its backend then: set KERAS_BACKEND (and
TensorFlow's log level) before the import.
"""

import keras
from keras import layers

IMAGE_SIZE = 64
PATCH_SIZE = 8
NUM_PATCHES = (IMAGE_SIZE // PATCH_SIZE) ** 2
EMBEDDING_DIM = 256
DROPOUT_RATE = 0.2
NUM_BLOCKS = 4
NUM_CLASSES = 100


class Patches(layers.Layer):
    def __init__(self, patch_size, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size

    def call(self, x):
        patches = keras.ops.image.extract_patches(x, self.patch_size)
        batch_size = keras.ops.shape(patches)[0]
        num_patches = keras.ops.shape(patches)[1] * keras.ops.shape(patches)[2]
        patch_dim = keras.ops.shape(patches)[3]
        return keras.ops.reshape(patches, (batch_size, num_patches, patch_dim))


class PositionEmbedding(layers.Layer):
    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = int(sequence_length)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        feature_size = input_shape[-1]
        self.position_embeddings = self.add_weight(
            name="embeddings",
            shape=[self.sequence_length, feature_size],
            initializer=self.initializer,
            trainable=True,
        )
        super().build(input_shape)

    def call(self, inputs, start_index=0):
        shape = keras.ops.shape(inputs)
        feature_length = shape[-1]
        sequence_length = shape[-2]
        position_embeddings = keras.ops.convert_to_tensor(self.position_embeddings)
        position_embeddings = keras.ops.slice(
            position_embeddings, (start_index, 0), (sequence_length, feature_length)
        )
        return keras.ops.broadcast_to(position_embeddings, shape)


class MLPMixerLayer(layers.Layer):
    def __init__(self, num_patches, hidden_units, dropout_rate, **kwargs):
        super().__init__(**kwargs)
        self.mlp1 = keras.Sequential(
            [
                layers.Dense(units=num_patches, activation="gelu"),
                layers.Dense(units=num_patches),
                layers.Dropout(rate=dropout_rate),
            ]
        )
        self.mlp2 = keras.Sequential(
            [
                layers.Dense(units=num_patches, activation="gelu"),
                layers.Dense(units=hidden_units),
                layers.Dropout(rate=dropout_rate),
            ]
        )
        self.normalize = layers.LayerNormalization(epsilon=1e-6)

    def build(self, input_shape):
        return super().build(input_shape)

    def call(self, inputs):
        x = self.normalize(inputs)
        x_channels = keras.ops.transpose(x, axes=(0, 2, 1))
        mlp1_outputs = self.mlp1(x_channels)
        mlp1_outputs = keras.ops.transpose(mlp1_outputs, axes=(0, 2, 1))
        x = mlp1_outputs + inputs
        x_patches = self.normalize(x)
        mlp2_outputs = self.mlp2(x_patches)
        return x + mlp2_outputs


class FNetLayer(layers.Layer):
    def __init__(self, embedding_dim, dropout_rate, **kwargs):
        super().__init__(**kwargs)
        self.ffn = keras.Sequential(
            [
                layers.Dense(units=embedding_dim, activation="gelu"),
                layers.Dropout(rate=dropout_rate),
                layers.Dense(units=embedding_dim),
            ]
        )
        self.normalize1 = layers.LayerNormalization(epsilon=1e-6)
        self.normalize2 = layers.LayerNormalization(epsilon=1e-6)

    def call(self, inputs):
        real_part = inputs
        im_part = keras.ops.zeros_like(inputs)
        x = keras.ops.fft2((real_part, im_part))[0]
        x = x + inputs
        x = self.normalize1(x)
        x_ffn = self.ffn(x)
        x = x + x_ffn
        return self.normalize2(x)


class gMLPLayer(layers.Layer):
    def __init__(self, num_patches, embedding_dim, dropout_rate, **kwargs):
        super().__init__(**kwargs)
        self.channel_projection1 = keras.Sequential(
            [
                layers.Dense(units=embedding_dim * 2, activation="gelu"),
                layers.Dropout(rate=dropout_rate),
            ]
        )
        self.channel_projection2 = layers.Dense(units=embedding_dim)
        self.spatial_projection = layers.Dense(units=num_patches, bias_initializer="Ones")
        self.normalize1 = layers.LayerNormalization(epsilon=1e-6)
        self.normalize2 = layers.LayerNormalization(epsilon=1e-6)

    def spatial_gating_unit(self, x):
        u, v = keras.ops.split(x, indices_or_sections=2, axis=2)
        v = self.normalize2(v)
        v_channels = keras.ops.transpose(v, axes=(0, 2, 1))
        v_projected = self.spatial_projection(v_channels)
        v_projected = keras.ops.transpose(v_projected, axes=(0, 2, 1))
        return u * v_projected

    def call(self, inputs):
        x = self.normalize1(inputs)
        x_projected = self.channel_projection1(x)
        x_spatial = self.spatial_gating_unit(x_projected)
        x_projected = self.channel_projection2(x_spatial)
        return x + x_projected


def build_classifier(blocks, positional_encoding=False):
    """The example's classifier around a stack of blocks; the stack is the layer named "blocks"."""
    inputs = layers.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    patches = Patches(PATCH_SIZE)(inputs)
    x = layers.Dense(units=EMBEDDING_DIM)(patches)
    if positional_encoding:
        x = x + PositionEmbedding(sequence_length=NUM_PATCHES)(x)
    x = keras.Sequential(blocks, name="blocks")(x)
    representation = layers.GlobalAveragePooling1D()(x)
    representation = layers.Dropout(rate=DROPOUT_RATE)(representation)
    logits = layers.Dense(NUM_CLASSES)(representation)
    return keras.Model(inputs=inputs, outputs=logits)


# name -> (one block, whether the patch embeddings get a learned position embedding)
MODELS = {
    "mixer": (lambda: MLPMixerLayer(NUM_PATCHES, EMBEDDING_DIM, DROPOUT_RATE), False),
    "fnet": (lambda: FNetLayer(EMBEDDING_DIM, DROPOUT_RATE), True),
    "gmlp": (lambda: gMLPLayer(NUM_PATCHES, EMBEDDING_DIM, DROPOUT_RATE), False),
}


def build(name):
    """The uncompiled classifier `name` (one of MODELS) with fresh Keras-initialised weights."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(MODELS)}")
    make_block, positional_encoding = MODELS[name]
    return build_classifier([make_block() for _ in range(NUM_BLOCKS)], positional_encoding)


# ------------------------------------------------------------------------------------------------
# Beyond the MLP example: two more Keras examples, layer for layer, minus their augmentation.
# ------------------------------------------------------------------------------------------------


def build_convmixer(image_size=32, filters=256, depth=8, kernel_size=5, patch_size=2, num_classes=10):
    """ConvMixer-256/8 of "Image classification with ConvMixer" (keras.io/examples/vision/convmixer)."""

    def activation_block(x):
        x = layers.Activation("gelu")(x)
        return layers.BatchNormalization()(x)

    def conv_mixer_block(x):
        x0 = x
        x = layers.DepthwiseConv2D(kernel_size=kernel_size, padding="same")(x)
        x = layers.Add()([activation_block(x), x0])
        x = layers.Conv2D(filters, kernel_size=1)(x)
        return activation_block(x)

    inputs = keras.Input((image_size, image_size, 3))
    x = layers.Rescaling(scale=1.0 / 255)(inputs)
    x = layers.Conv2D(filters, kernel_size=patch_size, strides=patch_size)(x)
    x = activation_block(x)
    for _ in range(depth):
        x = conv_mixer_block(x)
    x = layers.GlobalAvgPool2D()(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


class PatchEncoder(layers.Layer):
    """The ViT example's PatchEncoder: Dense(projection_dim) of each patch + Embedding of its position."""

    def __init__(self, num_patches, projection_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_patches = num_patches
        self.projection = layers.Dense(units=projection_dim)
        self.position_embedding = layers.Embedding(input_dim=num_patches, output_dim=projection_dim)

    def call(self, patch):
        positions = keras.ops.expand_dims(keras.ops.arange(start=0, stop=self.num_patches, step=1), axis=0)
        return self.projection(patch) + self.position_embedding(positions)


def build_vit(projection_dim=256, head_units=(2048, 1024), image_size=72, patch_size=6, num_heads=4, key_dim=64,
              transformer_layers=8, num_classes=100):
    """"Image classification with Vision Transformer" (keras.io/examples/vision/
    image_classification_with_vision_transformer): experiments/vit.yaml with the defaults,
    experiments/vit-small.yaml with projection_dim=64, head_units=(512,)."""

    def mlp(x, hidden_units, dropout_rate):
        for units in hidden_units:
            x = layers.Dense(units, activation=keras.activations.gelu)(x)
            x = layers.Dropout(dropout_rate)(x)
        return x

    num_patches = (image_size // patch_size) ** 2
    inputs = keras.Input((image_size, image_size, 3))
    patches = Patches(patch_size)(inputs)
    encoded = PatchEncoder(num_patches, projection_dim)(patches)
    for _ in range(transformer_layers):
        x1 = layers.LayerNormalization(epsilon=1e-6)(encoded)
        attention = layers.MultiHeadAttention(num_heads=num_heads, key_dim=key_dim, dropout=0.1)(x1, x1)
        x2 = layers.Add()([attention, encoded])
        x3 = layers.LayerNormalization(epsilon=1e-6)(x2)
        x3 = mlp(x3, hidden_units=[projection_dim * 2, projection_dim], dropout_rate=0.1)
        encoded = layers.Add()([x3, x2])
    representation = layers.LayerNormalization(epsilon=1e-6)(encoded)
    representation = layers.Flatten()(representation)
    representation = layers.Dropout(0.5)(representation)
    features = mlp(representation, hidden_units=head_units, dropout_rate=0.5)
    logits = layers.Dense(num_classes)(features)
    return keras.Model(inputs=inputs, outputs=logits)


# name -> (builder, input image size, classes, whether the outputs are logits, AdamW learning rate, batch)
MORE_MODELS = {
    "convmixer": (build_convmixer, 32, 10, False, 0.001, 128),
    "vit-small": (lambda: build_vit(projection_dim=64, head_units=(512,)), 72, 100, True, 0.001, 256),
    "vit": (build_vit, 72, 100, True, 0.001, 256),
}
