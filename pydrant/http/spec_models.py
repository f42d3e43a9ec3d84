"""Request models generated from qdrant-openapi-v1.15.5.json by tools/gen_spec_models.py; do not edit."""

from __future__ import annotations

from pydantic import (
    AliasChoices,
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)
from typing import Any
from enum import StrEnum


class Status(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    error: StrictStr | None = Field(
        None, description='Description of the occurred error.'
    )


class ErrorResponse(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    time: StrictFloat | None = Field(
        None, description='Time spent to process this request'
    )
    status: Status | None = None
    result: dict[str, Any] | None = None


class CollectionDescription(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    name: StrictStr


class CollectionStatus(StrEnum):
    green = 'green'
    yellow = 'yellow'
    grey = 'grey'
    red = 'red'


class OptimizersStatus1(StrEnum):
    ok = 'ok'


class OptimizersStatus2(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    error: StrictStr


class Distance(StrEnum):
    Cosine = 'Cosine'
    Euclid = 'Euclid'
    Dot = 'Dot'
    Manhattan = 'Manhattan'


class HnswConfigDiff(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    m: StrictInt | None = Field(
        None,
        description='Number of edges per node in the index graph. Larger the value - more accurate the search, more space required.',
    )
    ef_construct: StrictInt | None = Field(
        None,
        description='Number of neighbours to consider during the index building. Larger the value - more accurate the search, more time required to build the index.',
    )
    full_scan_threshold: StrictInt | None = Field(
        None,
        description='Minimal size threshold (in KiloBytes) below which full-scan is preferred over HNSW search. This measures the total size of vectors being queried against. When the maximum estimated amount of points that a condition satisfies is smaller than `full_scan_threshold_kb`, the query planner will use full-scan search instead of HNSW index traversal for better performance. Note: 1Kb = 1 vector of size 256',
    )
    max_indexing_threads: StrictInt | None = Field(
        None,
        description='Number of parallel threads used for background index building. If 0 - automatically select from 8 to 16. Best to keep between 8 and 16 to prevent likelihood of building broken/inefficient HNSW graphs. On small CPUs, less threads are used.',
    )
    on_disk: StrictBool | None = Field(
        None,
        description='Store HNSW index on disk. If set to false, the index will be stored in RAM. Default: false',
    )
    payload_m: StrictInt | None = Field(
        None,
        description='Custom M param for additional payload-aware HNSW links. If not set, default M will be used.',
    )
    copy_vectors: StrictBool | None = Field(
        None,
        description='Store copies of original and quantized vectors within the HNSW index file. Default: false. Enabling this option will trade the search speed for disk usage by reducing amount of random seeks during the search. Requires quantized vectors to be enabled. Multi-vectors are not supported.',
    )


class ScalarType(StrEnum):
    int8 = 'int8'


class CompressionRatio(StrEnum):
    x4 = 'x4'
    x8 = 'x8'
    x16 = 'x16'
    x32 = 'x32'
    x64 = 'x64'


class BinaryQuantizationEncoding(StrEnum):
    one_bit = 'one_bit'
    two_bits = 'two_bits'
    one_and_half_bits = 'one_and_half_bits'


class BinaryQuantizationQueryEncoding(StrEnum):
    default = 'default'
    binary = 'binary'
    scalar4bits = 'scalar4bits'
    scalar8bits = 'scalar8bits'


class Datatype(StrEnum):
    float32 = 'float32'
    uint8 = 'uint8'
    float16 = 'float16'


class MultiVectorComparator(StrEnum):
    max_sim = 'max_sim'


class ShardingMethod(StrEnum):
    auto = 'auto'
    custom = 'custom'


class SparseIndexParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    full_scan_threshold: StrictInt | None = Field(
        None,
        description='We prefer a full scan search upto (excluding) this number of vectors.\n\nNote: this is number of vectors, not KiloBytes.',
    )
    on_disk: StrictBool | None = Field(
        None,
        description='Store index on disk. If set to false, the index will be stored in RAM. Default: false',
    )
    datatype: Datatype | None = Field(
        None,
        description='Defines which datatype should be used for the index. Choosing different datatypes allows to optimize memory usage and performance vs accuracy.\n\n- For `float32` datatype - vectors are stored as single-precision floating point numbers, 4 bytes. - For `float16` datatype - vectors are stored as half-precision floating point numbers, 2 bytes. - For `uint8` datatype - vectors are quantized to unsigned 8-bit integers, 1 byte. Quantization to fit byte range `[0, 255]` happens during indexing automatically, so the actual vector data does not need to conform to this range.',
    )


class Modifier(StrEnum):
    none = 'none'
    idf = 'idf'


class HnswConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    m: StrictInt = Field(
        ...,
        description='Number of edges per node in the index graph. Larger the value - more accurate the search, more space required.',
    )
    ef_construct: StrictInt = Field(
        ...,
        description='Number of neighbours to consider during the index building. Larger the value - more accurate the search, more time required to build index.',
    )
    full_scan_threshold: StrictInt = Field(
        ...,
        description='Minimal size threshold (in KiloBytes) below which full-scan is preferred over HNSW search. This measures the total size of vectors being queried against. When the maximum estimated amount of points that a condition satisfies is smaller than `full_scan_threshold_kb`, the query planner will use full-scan search instead of HNSW index traversal for better performance. Note: 1Kb = 1 vector of size 256',
    )
    max_indexing_threads: StrictInt | None = Field(
        0,
        description='Number of parallel threads used for background index building. If 0 - automatically select from 8 to 16. Best to keep between 8 and 16 to prevent likelihood of slow building or broken/inefficient HNSW graphs. On small CPUs, less threads are used.',
    )
    on_disk: StrictBool | None = Field(
        None,
        description='Store HNSW index on disk. If set to false, index will be stored in RAM. Default: false',
    )
    payload_m: StrictInt | None = Field(
        None,
        description='Custom M param for hnsw graph built for payload index. If not set, default M will be used.',
    )
    copy_vectors: StrictBool | None = Field(
        None,
        description='Store copies of original and quantized vectors within the HNSW index file. Default: false. Enabling this option will trade the search speed for disk usage by reducing amount of random seeks during the search. Requires quantized vectors to be enabled. Multi-vectors are not supported.',
    )


class OptimizersConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    deleted_threshold: StrictFloat = Field(
        ...,
        description='The minimal fraction of deleted vectors in a segment, required to perform segment optimization',
    )
    vacuum_min_vector_number: StrictInt = Field(
        ...,
        description='The minimal number of vectors in a segment, required to perform segment optimization',
    )
    default_segment_number: StrictInt = Field(
        ...,
        description='Target amount of segments optimizer will try to keep. Real amount of segments may vary depending on multiple parameters: - Amount of stored points - Current write RPS\n\nIt is recommended to select default number of segments as a factor of the number of search threads, so that each segment would be handled evenly by one of the threads. If `default_segment_number = 0`, will be automatically selected by the number of available CPUs.',
    )
    max_segment_size: StrictInt | None = Field(
        None,
        description='Do not create segments larger this size (in kilobytes). Large segments might require disproportionately long indexation times, therefore it makes sense to limit the size of segments.\n\nIf indexing speed is more important - make this parameter lower. If search speed is more important - make this parameter higher. Note: 1Kb = 1 vector of size 256 If not set, will be automatically selected considering the number of available CPUs.',
    )
    memmap_threshold: StrictInt | None = Field(
        None,
        deprecated=True,
        description='Maximum size (in kilobytes) of vectors to store in-memory per segment. Segments larger than this threshold will be stored as read-only memmapped file.\n\nMemmap storage is disabled by default, to enable it, set this threshold to a reasonable value.\n\nTo disable memmap storage, set this to `0`. Internally it will use the largest threshold possible.\n\nNote: 1Kb = 1 vector of size 256',
    )
    indexing_threshold: StrictInt | None = Field(
        None,
        description='Maximum size (in kilobytes) of vectors allowed for plain index, exceeding this threshold will enable vector indexing\n\nDefault value is 10,000, based on experiments and observations.\n\nTo disable vector indexing, set to `0`.\n\nNote: 1kB = 1 vector of size 256.',
    )
    flush_interval_sec: StrictInt = Field(
        ..., description='Minimum interval between forced flushes.'
    )
    max_optimization_threads: StrictInt | None = Field(
        None,
        description='Max number of threads (jobs) for running optimizations per shard. Note: each optimization job will also use `max_indexing_threads` threads by itself for index building. If null - have no limit and choose dynamically to saturate CPU. If 0 - no optimization threads, optimizations will be disabled.',
    )


class WalConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    wal_capacity_mb: StrictInt = Field(
        ..., description='Size of a single WAL segment in MB'
    )
    wal_segments_ahead: StrictInt = Field(
        ..., description='Number of WAL segments to create ahead of actually used ones'
    )
    wal_retain_closed: StrictInt | None = Field(
        1, description='Number of closed WAL segments to keep'
    )


class StrictModeMultivectorOutput(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    max_vectors: StrictInt | None = Field(
        None, description='Max number of vectors in a multivector'
    )


class StrictModeSparseOutput(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    max_length: StrictInt | None = Field(
        None, description='Max length of sparse vector'
    )


class Payload(BaseModel):
    model_config = ConfigDict(
        extra='allow',
    )


class PayloadSchemaType(StrEnum):
    keyword = 'keyword'
    integer = 'integer'
    float = 'float'
    geo = 'geo'
    text = 'text'
    bool = 'bool'
    datetime = 'datetime'
    uuid = 'uuid'


class KeywordIndexType(StrEnum):
    keyword = 'keyword'


class IntegerIndexType(StrEnum):
    integer = 'integer'


class FloatIndexType(StrEnum):
    float = 'float'


class GeoIndexType(StrEnum):
    geo = 'geo'


class TextIndexType(StrEnum):
    text = 'text'


class TokenizerType(StrEnum):
    prefix = 'prefix'
    whitespace = 'whitespace'
    word = 'word'
    multilingual = 'multilingual'


class Language(StrEnum):
    arabic = 'arabic'
    azerbaijani = 'azerbaijani'
    basque = 'basque'
    bengali = 'bengali'
    catalan = 'catalan'
    chinese = 'chinese'
    danish = 'danish'
    dutch = 'dutch'
    english = 'english'
    finnish = 'finnish'
    french = 'french'
    german = 'german'
    greek = 'greek'
    hebrew = 'hebrew'
    hinglish = 'hinglish'
    hungarian = 'hungarian'
    indonesian = 'indonesian'
    italian = 'italian'
    japanese = 'japanese'
    kazakh = 'kazakh'
    nepali = 'nepali'
    norwegian = 'norwegian'
    portuguese = 'portuguese'
    romanian = 'romanian'
    russian = 'russian'
    slovene = 'slovene'
    spanish = 'spanish'
    swedish = 'swedish'
    tajik = 'tajik'
    turkish = 'turkish'


class StopwordsSet(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    languages: list[Language] | None = Field(
        None,
        description='Set of languages to use for stopwords. Multiple pre-defined lists of stopwords can be combined.',
    )
    custom: list[StrictStr] | None = Field(
        None, description='Custom stopwords set. Will be merged with the languages set.'
    )


class Snowball(StrEnum):
    snowball = 'snowball'


class SnowballLanguage(StrEnum):
    arabic = 'arabic'
    armenian = 'armenian'
    danish = 'danish'
    dutch = 'dutch'
    english = 'english'
    finnish = 'finnish'
    french = 'french'
    german = 'german'
    greek = 'greek'
    hungarian = 'hungarian'
    italian = 'italian'
    norwegian = 'norwegian'
    portuguese = 'portuguese'
    romanian = 'romanian'
    russian = 'russian'
    spanish = 'spanish'
    swedish = 'swedish'
    tamil = 'tamil'
    turkish = 'turkish'


class BoolIndexType(StrEnum):
    bool = 'bool'


class DatetimeIndexType(StrEnum):
    datetime = 'datetime'


class UuidIndexType(StrEnum):
    uuid = 'uuid'


class PayloadSelectorInclude(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    include: list[StrictStr] = Field(..., description='Only include this payload keys')


class PayloadSelectorExclude(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    exclude: list[StrictStr] = Field(
        ..., description='Exclude this fields from returning payload'
    )


class SparseVector(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    indices: list[StrictInt] = Field(..., description='Indices must be unique')
    values: list[StrictFloat] = Field(
        ..., description='Values and indices must be the same length'
    )


class NamedVector(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    name: StrictStr = Field(..., description='Name of vector data')
    vector: list[StrictFloat] = Field(..., description='Vector data')


class NamedSparseVector(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    name: StrictStr = Field(..., description='Name of vector data')
    vector: SparseVector


class MatchText(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    text: StrictStr


class MatchTextAny(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    text_any: StrictStr


class MatchPhrase(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    phrase: StrictStr


class MatchExcept(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    except_: list[StrictStr] | list[StrictInt] = Field(..., alias='except')


class Range(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    lt: StrictFloat | None = Field(None, description='point.key < range.lt')
    gt: StrictFloat | None = Field(None, description='point.key > range.gt')
    gte: StrictFloat | None = Field(None, description='point.key >= range.gte')
    lte: StrictFloat | None = Field(None, description='point.key <= range.lte')


class DatetimeRange(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    lt: StrictStr | None = Field(None, description='point.key < range.lt')
    gt: StrictStr | None = Field(None, description='point.key > range.gt')
    gte: StrictStr | None = Field(None, description='point.key >= range.gte')
    lte: StrictStr | None = Field(None, description='point.key <= range.lte')


class GeoPoint(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    lon: StrictFloat
    lat: StrictFloat


class GeoRadius(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    center: GeoPoint
    radius: StrictFloat = Field(..., description='Radius of the area in meters')


class GeoLineString(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    points: list[GeoPoint]


class ValuesCount(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    lt: StrictInt | None = Field(
        None, description='point.key.length() < values_count.lt'
    )
    gt: StrictInt | None = Field(
        None, description='point.key.length() > values_count.gt'
    )
    gte: StrictInt | None = Field(
        None, description='point.key.length() >= values_count.gte'
    )
    lte: StrictInt | None = Field(
        None, description='point.key.length() <= values_count.lte'
    )


class PayloadField(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    key: StrictStr = Field(..., description='Payload field name')


class IsNullCondition(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    is_null: PayloadField


class HasIdCondition(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    has_id: list[StrictInt | StrictStr]


class HasVectorCondition(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    has_vector: StrictStr


class QuantizationSearchParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    ignore: StrictBool | None = Field(
        False, description='If true, quantized vectors are ignored. Default is false.'
    )
    rescore: StrictBool | None = Field(
        None,
        description='If true, use original vectors to re-score top-k results. Might require more time in case if original vectors are stored on disk. If not set, qdrant decides automatically apply rescoring or not.',
    )
    oversampling: StrictFloat | None = Field(
        None,
        description='Oversampling factor for quantization. Default is 1.0.\n\nDefines how many extra vectors should be pre-selected using quantized index, and then re-scored using original vectors.\n\nFor example, if `oversampling` is 2.4 and `limit` is 100, then 240 vectors will be pre-selected using quantized index, and then top-100 will be returned after re-scoring.',
    )


class UpdateStatus(StrEnum):
    acknowledged = 'acknowledged'
    completed = 'completed'


class RecommendStrategy(StrEnum):
    average_vector = 'average_vector'
    best_score = 'best_score'
    sum_scores = 'sum_scores'


class Direction(StrEnum):
    asc = 'asc'
    desc = 'desc'


class WalConfigDiff(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    wal_capacity_mb: StrictInt | None = Field(
        None, description='Size of a single WAL segment in MB'
    )
    wal_segments_ahead: StrictInt | None = Field(
        None, description='Number of WAL segments to create ahead of actually used ones'
    )
    wal_retain_closed: StrictInt | None = Field(
        None, description='Number of closed WAL segments to retain'
    )


class MaxOptimizationThreadsSetting(StrEnum):
    auto = 'auto'


class InitFrom(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    collection: StrictStr


class StrictModeMultivector(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    max_vectors: StrictInt | None = Field(
        None, description='Max number of vectors in a multivector'
    )


class StrictModeSparse(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    max_length: StrictInt | None = Field(
        None, description='Max length of sparse vector'
    )


class Disabled(StrEnum):
    Disabled = 'Disabled'


class CollectionParamsDiff(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    replication_factor: StrictInt | None = Field(
        None, description='Number of replicas for each shard'
    )
    write_consistency_factor: StrictInt | None = Field(
        None,
        description='Minimal number successful responses from replicas to consider operation successful',
    )
    read_fan_out_factor: StrictInt | None = Field(
        None,
        description='Fan-out every read request to these many additional remote nodes (and return first available response)',
    )
    on_disk_payload: StrictBool | None = Field(
        None,
        description="If true - point's payload will not be stored in memory. It will be read from the disk every time it is requested. This setting saves RAM by (slightly) increasing the response time. Note: those payload values that are involved in filtering and are indexed - remain in RAM.",
    )


class CreateAlias(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    collection_name: StrictStr
    alias_name: StrictStr


class DeleteAlias(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    alias_name: StrictStr


class RenameAlias(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    old_alias_name: StrictStr
    new_alias_name: StrictStr


class Image(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    image: Any = Field(
        ...,
        description='Image data: base64 encoded image or an URL',
        examples=['https://example.com/image.jpg'],
    )
    model: StrictStr = Field(
        ...,
        description='Name of the model used to generate the vector. List of available models depends on a provider.',
        examples=['Qdrant/clip-ViT-B-32-vision'],
    )
    options: dict[str, Any] | None = Field(
        None,
        description='Parameters for the model Values of the parameters are model-specific',
    )


class InferenceObject(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    object: Any = Field(
        ...,
        description='Arbitrary data, used as input for the embedding model. Used if the model requires more than one input or a custom input.',
    )
    model: StrictStr = Field(
        ...,
        description='Name of the model used to generate the vector. List of available models depends on a provider.',
        examples=['jinaai/jina-embeddings-v2-base-en'],
    )
    options: dict[str, Any] | None = Field(
        None,
        description='Parameters for the model Values of the parameters are model-specific',
    )


class Status1(StrEnum):
    disabled = 'disabled'


class ClusterStatus1(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    status: Status1


class Status2(StrEnum):
    enabled = 'enabled'


class PeerInfo(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    uri: StrictStr


class StateRole(StrEnum):
    Follower = 'Follower'
    Candidate = 'Candidate'
    Leader = 'Leader'
    PreCandidate = 'PreCandidate'


class ConsensusThreadStatus2(StrEnum):
    working = 'working'


class ConsensusThreadStatus1(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    consensus_thread_status: ConsensusThreadStatus2
    last_update: StrictStr


class ConsensusThreadStatus4(StrEnum):
    stopped = 'stopped'


class ConsensusThreadStatus3(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    consensus_thread_status: ConsensusThreadStatus4


class ConsensusThreadStatus6(StrEnum):
    stopped_with_err = 'stopped_with_err'


class ConsensusThreadStatus5(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    consensus_thread_status: ConsensusThreadStatus6
    err: StrictStr


class MessageSendErrors(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    count: StrictInt
    latest_error: StrictStr | None = None
    latest_error_timestamp: StrictStr | None = Field(
        None, description='Timestamp of the latest error'
    )


class SnapshotDescription(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    name: StrictStr
    creation_time: StrictStr | None = None
    size: StrictInt
    checksum: StrictStr | None = None


class CountResult(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    count: StrictInt = Field(
        ..., description='Number of points which satisfy the conditions'
    )


class ReplicaState(StrEnum):
    Active = 'Active'
    Dead = 'Dead'
    Partial = 'Partial'
    Initializing = 'Initializing'
    Listener = 'Listener'
    PartialSnapshot = 'PartialSnapshot'
    Recovery = 'Recovery'
    Resharding = 'Resharding'
    ReshardingScaleDown = 'ReshardingScaleDown'


class RemoteShardInfo(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_id: StrictInt = Field(..., description='Remote shard id')
    shard_key: StrictStr | StrictInt | None = Field(
        None, description='User-defined sharding key'
    )
    peer_id: StrictInt = Field(..., description='Remote peer id')
    state: ReplicaState


class ShardTransferMethod1(StrEnum):
    stream_records = 'stream_records'


class ShardTransferMethod2(StrEnum):
    snapshot = 'snapshot'


class ShardTransferMethod3(StrEnum):
    wal_delta = 'wal_delta'


class ShardTransferMethod4(StrEnum):
    resharding_stream_records = 'resharding_stream_records'


class ReshardingDirection1(StrEnum):
    up = 'up'


class ReshardingDirection2(StrEnum):
    down = 'down'


class AppFeaturesTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    debug: StrictBool
    service_debug_feature: StrictBool
    recovery_mode: StrictBool
    gpu: StrictBool
    rocksdb: StrictBool


class FeatureFlags(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    all: StrictBool | None = Field(
        False,
        description='Magic feature flag that enables all features.\n\nNote that this will only be applied to all flags when passed into [`init_feature_flags`].',
    )
    payload_index_skip_rocksdb: StrictBool | None = Field(
        True,
        description='Skip usage of RocksDB in new immutable payload indices.\n\nFirst implemented in Qdrant 1.13.5. Enabled by default in Qdrant 1.14.1',
    )
    payload_index_skip_mutable_rocksdb: StrictBool | None = Field(
        False, description='Skip usage of RocksDB in new mutable payload indices.'
    )
    payload_storage_skip_rocksdb: StrictBool | None = Field(
        False,
        description='Skip usage of RocksDB in new payload storages.\n\nOn-disk payload storages never use Gridstore.\n\nFirst implemented in Qdrant 1.15.0.',
    )
    incremental_hnsw_building: StrictBool | None = Field(
        True,
        description='Use incremental HNSW building.\n\nEnabled by default in Qdrant 1.14.1.',
    )
    migrate_rocksdb_id_tracker: StrictBool | None = Field(
        True,
        description='Migrate RocksDB based ID trackers into file based ID tracker on start.\n\nEnabled by default in Qdrant 1.15.0.',
    )
    migrate_rocksdb_vector_storage: StrictBool | None = Field(
        False,
        description='Migrate RocksDB based vector storages into new format on start.',
    )
    migrate_rocksdb_payload_storage: StrictBool | None = Field(
        False,
        description='Migrate RocksDB based payload storages into new format on start.',
    )
    migrate_rocksdb_payload_indices: StrictBool | None = Field(
        False,
        description='Migrate RocksDB based payload indices into new format on start.\n\nRebuilds a new payload index from scratch.',
    )
    appendable_quantization: StrictBool | None = Field(
        False, description='Use appendable quantization in appendable plain segments.'
    )


class HnswGlobalConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    healing_threshold: StrictFloat | None = Field(
        0.3,
        description='Enable HNSW healing if the ratio of missing points is no more than this value. To disable healing completely, set this value to `0.0`.',
    )


class CpuEndian(StrEnum):
    little = 'little'
    big = 'big'
    other = 'other'


class GpuDeviceTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    name: StrictStr


class ShardStatus(StrEnum):
    green = 'green'
    yellow = 'yellow'
    grey = 'grey'
    red = 'red'


class SegmentType(StrEnum):
    plain = 'plain'
    indexed = 'indexed'
    special = 'special'


class VectorDataInfo(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    num_vectors: StrictInt
    num_indexed_vectors: StrictInt
    num_deleted_vectors: StrictInt


class VectorStorageType1(StrEnum):
    Memory = 'Memory'


class VectorStorageType2(StrEnum):
    Mmap = 'Mmap'


class VectorStorageType3(StrEnum):
    ChunkedMmap = 'ChunkedMmap'


class VectorStorageType4(StrEnum):
    InRamChunkedMmap = 'InRamChunkedMmap'


class Type(StrEnum):
    plain = 'plain'


class Indexes1(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: Type
    options: dict[str, Any]


class Type1(StrEnum):
    hnsw = 'hnsw'


class Indexes2(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: Type1
    options: HnswConfig


class VectorStorageDatatype(StrEnum):
    float32 = 'float32'
    float16 = 'float16'
    uint8 = 'uint8'


class SparseIndexType1(StrEnum):
    MutableRam = 'MutableRam'


class SparseIndexType2(StrEnum):
    ImmutableRam = 'ImmutableRam'


class SparseIndexType3(StrEnum):
    Mmap = 'Mmap'


class SparseVectorStorageType1(StrEnum):
    on_disk = 'on_disk'


class SparseVectorStorageType2(StrEnum):
    mmap = 'mmap'


class Type2(StrEnum):
    in_memory = 'in_memory'


class PayloadStorageType1(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: Type2


class Type3(StrEnum):
    on_disk = 'on_disk'


class PayloadStorageType2(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: Type3


class Type4(StrEnum):
    mmap = 'mmap'


class PayloadStorageType3(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: Type4


class Type5(StrEnum):
    in_ram_mmap = 'in_ram_mmap'


class PayloadStorageType4(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: Type5


class OperationDurationStatistics(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    count: StrictInt
    fail_count: StrictInt | None = None
    avg_duration_micros: StrictFloat | None = Field(
        None,
        description='The average time taken by 128 latest operations, calculated as a weighted mean.',
    )
    min_duration_micros: StrictFloat | None = Field(
        None,
        description='The minimum duration of the operations across all the measurements.',
    )
    max_duration_micros: StrictFloat | None = Field(
        None,
        description='The maximum duration of the operations across all the measurements.',
    )
    total_duration_micros: StrictInt | None = Field(
        None, description='The total duration of all operations in microseconds.'
    )
    last_responded: StrictStr | None = None


class PayloadIndexTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    field_name: StrictStr | None = None
    index_type: StrictStr
    points_values_count: StrictInt = Field(
        ..., description='The amount of values indexed for all points.'
    )
    points_count: StrictInt = Field(
        ..., description='The amount of points that have at least one value indexed.'
    )
    histogram_bucket_size: StrictInt | None = None


class TrackerStatus1(StrEnum):
    optimizing = 'optimizing'
    done = 'done'


class TrackerStatus2(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    cancelled: StrictStr


class TrackerStatus3(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    error: StrictStr


class RemoteShardTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_id: StrictInt
    peer_id: StrictInt | None = None
    searches: OperationDurationStatistics
    updates: OperationDurationStatistics


class PartialSnapshotTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    ongoing_create_snapshot_requests: StrictInt
    is_recovering: StrictBool
    recovery_timestamp: StrictInt


class ShardCleanStatusTelemetry1(StrEnum):
    started = 'started'
    done = 'done'
    cancelled = 'cancelled'


class ShardCleanStatusProgressTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    deleted_points: StrictInt


class ShardCleanStatusFailedTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    reason: StrictStr


class ClusterStatusTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    number_of_peers: StrictInt
    term: StrictInt
    commit: StrictInt
    pending_operations: StrictInt
    role: StateRole | None = None
    is_voter: StrictBool
    peer_id: StrictInt | None = None
    consensus_thread_status: (
        ConsensusThreadStatus1 | ConsensusThreadStatus3 | ConsensusThreadStatus5
    ) = Field(..., description='Information about current consensus thread status')


class P2pConfigTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    connection_pool_size: StrictInt


class ConsensusConfigTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    max_message_queue_size: StrictInt
    tick_period_ms: StrictInt
    bootstrap_timeout_sec: StrictInt


class PeerMetadata(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    version: StrictStr = Field(..., description='Peer Qdrant version')


class WebApiTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    responses: dict[str, dict[str, OperationDurationStatistics]]


class GrpcTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    responses: dict[str, OperationDurationStatistics]


class MemoryTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    active_bytes: StrictInt = Field(
        ...,
        description='Total number of bytes in active pages allocated by the application',
    )
    allocated_bytes: StrictInt = Field(
        ..., description='Total number of bytes allocated by the application'
    )
    metadata_bytes: StrictInt = Field(
        ..., description='Total number of bytes dedicated to metadata'
    )
    resident_bytes: StrictInt = Field(
        ...,
        description='Maximum number of bytes in physically resident data pages mapped',
    )
    retained_bytes: StrictInt = Field(
        ..., description='Total number of bytes in virtual memory mappings'
    )


class HardwareUsage(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    cpu: StrictInt
    payload_io_read: StrictInt
    payload_io_write: StrictInt
    payload_index_io_read: StrictInt
    payload_index_io_write: StrictInt
    vector_io_read: StrictInt
    vector_io_write: StrictInt


class MoveShard(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_id: StrictInt
    to_peer_id: StrictInt
    from_peer_id: StrictInt
    method: (
        ShardTransferMethod1
        | ShardTransferMethod2
        | ShardTransferMethod3
        | ShardTransferMethod4
        | None
    ) = Field(
        None, description='Method for transferring the shard from one node to another'
    )


class ReplicateShard(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_id: StrictInt
    to_peer_id: StrictInt
    from_peer_id: StrictInt
    method: (
        ShardTransferMethod1
        | ShardTransferMethod2
        | ShardTransferMethod3
        | ShardTransferMethod4
        | None
    ) = Field(
        None, description='Method for transferring the shard from one node to another'
    )


class AbortShardTransfer(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_id: StrictInt
    to_peer_id: StrictInt
    from_peer_id: StrictInt


class Replica(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_id: StrictInt
    peer_id: StrictInt


class CreateShardingKey(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt
    shards_number: StrictInt | None = Field(
        None,
        description='How many shards to create for this key If not specified, will use the default value from config',
    )
    replication_factor: StrictInt | None = Field(
        None,
        description='How many replicas to create for each shard If not specified, will use the default value from config',
    )
    placement: list[StrictInt] | None = Field(
        None,
        description='Placement of shards for this key List of peer ids, that can be used to place shards for this key If not specified, will be randomly placed among all peers',
    )


class DropShardingKey(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt


class RestartTransfer(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_id: StrictInt
    from_peer_id: StrictInt
    to_peer_id: StrictInt
    method: (
        ShardTransferMethod1
        | ShardTransferMethod2
        | ShardTransferMethod3
        | ShardTransferMethod4
    ) = Field(
        ..., description='Methods for transferring a shard from one node to another.'
    )


class StartResharding(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    direction: ReshardingDirection1 | ReshardingDirection2 = Field(
        ..., description='Resharding direction, scale up or down in number of shards'
    )
    peer_id: StrictInt | None = None
    shard_key: StrictStr | StrictInt | None = None


class AbortResharding(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    pass


class LocksOption(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    error_message: StrictStr | None = None
    write: StrictBool


class SnapshotPriority(StrEnum):
    no_sync = 'no_sync'
    snapshot = 'snapshot'
    replica = 'replica'


class AliasDescription(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    alias_name: StrictStr
    collection_name: StrictStr


class WriteOrdering(StrEnum):
    weak = 'weak'
    medium = 'medium'
    strong = 'strong'


class ReadConsistencyType(StrEnum):
    majority = 'majority'
    quorum = 'quorum'
    all = 'all'


class ContextExamplePair(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    positive: StrictInt | StrictStr | list[StrictFloat] | SparseVector
    negative: StrictInt | StrictStr | list[StrictFloat] | SparseVector


class VersionInfo(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    title: StrictStr
    version: StrictStr
    commit: StrictStr | None = None


class CollectionExistence(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    exists: StrictBool


class Mmr(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    diversity: StrictFloat | None = Field(
        None,
        description='Tunable parameter for the MMR algorithm. Determines the balance between diversity and relevance.\n\nA higher value favors diversity (dissimilarity to selected results), while a lower value favors relevance (similarity to the query vector).\n\nMust be in the range [0, 1]. Default value is 0.5.',
    )
    candidates_limit: StrictInt | None = Field(
        None,
        description='The maximum number of candidates to consider for re-ranking.\n\nIf not specified, the `limit` value is used.',
    )


class Fusion(StrEnum):
    rrf = 'rrf'
    dbsf = 'dbsf'


class Rrf(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    k: StrictInt | None = Field(
        None, description='K parameter for reciprocal rank fusion'
    )


class GeoDistanceParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    origin: GeoPoint
    to: StrictStr = Field(
        ..., description='Payload field with the destination geo point'
    )


class DatetimeExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    datetime: StrictStr


class DatetimeKeyExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    datetime_key: StrictStr


class Sample(StrEnum):
    random = 'random'


class SearchMatrixOffsetsResponse(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    offsets_row: list[StrictInt] = Field(..., description='Row indices of the matrix')
    offsets_col: list[StrictInt] = Field(
        ..., description='Column indices of the matrix'
    )
    scores: list[StrictFloat] = Field(
        ..., description='Scores associated with matrix coordinates'
    )
    ids: list[StrictInt | StrictStr] = Field(
        ..., description='Ids of the points in order'
    )


class SearchMatrixPair(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    a: StrictInt | StrictStr = Field(
        ..., description='Type, used for specifying point ID in user interface'
    )
    b: StrictInt | StrictStr = Field(
        ..., description='Type, used for specifying point ID in user interface'
    )
    score: StrictFloat


class ModelUsage(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    tokens: StrictInt


class CollectionsResponse(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    collections: list[CollectionDescription]


class ScalarQuantizationConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: ScalarType
    quantile: StrictFloat | None = Field(
        None,
        description='Quantile for quantization. Expected value range in [0.5, 1.0]. If not set - use the whole range of values',
    )
    always_ram: StrictBool | None = Field(
        None,
        description='If true - quantized vectors always will be stored in RAM, ignoring the config of main storage',
    )


class ProductQuantizationConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    compression: CompressionRatio
    always_ram: StrictBool | None = None


class BinaryQuantizationConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    always_ram: StrictBool | None = None
    encoding: BinaryQuantizationEncoding | None = None
    query_encoding: BinaryQuantizationQueryEncoding | None = Field(
        None,
        description='Asymmetric quantization configuration allows a query to have different quantization than stored vectors. It can increase the accuracy of search at the cost of performance.',
    )


class MultiVectorConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    comparator: MultiVectorComparator


class SparseVectorParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    index: SparseIndexParams | None = Field(
        None,
        description='Custom params for index. If none - values from collection configuration are used.',
    )
    modifier: Modifier | None = Field(
        None,
        description='Configures addition value modifications for sparse vectors. Default: none',
    )


class KeywordIndexParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: KeywordIndexType
    is_tenant: StrictBool | None = Field(
        None, description='If true - used for tenant optimization. Default: false.'
    )
    on_disk: StrictBool | None = Field(
        None, description='If true, store the index on disk. Default: false.'
    )


class IntegerIndexParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: IntegerIndexType
    lookup: StrictBool | None = Field(
        None, description='If true - support direct lookups. Default is true.'
    )
    range: StrictBool | None = Field(
        None, description='If true - support ranges filters. Default is true.'
    )
    is_principal: StrictBool | None = Field(
        None,
        description='If true - use this key to organize storage of the collection data. This option assumes that this key will be used in majority of filtered requests. Default is false.',
    )
    on_disk: StrictBool | None = Field(
        None,
        description='If true, store the index on disk. Default: false. Default is false.',
    )


class FloatIndexParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: FloatIndexType
    is_principal: StrictBool | None = Field(
        None,
        description='If true - use this key to organize storage of the collection data. This option assumes that this key will be used in majority of filtered requests.',
    )
    on_disk: StrictBool | None = Field(
        None, description='If true, store the index on disk. Default: false.'
    )


class GeoIndexParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: GeoIndexType
    on_disk: StrictBool | None = Field(
        None, description='If true, store the index on disk. Default: false.'
    )


class SnowballParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: Snowball
    language: SnowballLanguage


class BoolIndexParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: BoolIndexType
    on_disk: StrictBool | None = Field(
        None, description='If true, store the index on disk. Default: false.'
    )


class DatetimeIndexParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: DatetimeIndexType
    is_principal: StrictBool | None = Field(
        None,
        description='If true - use this key to organize storage of the collection data. This option assumes that this key will be used in majority of filtered requests.',
    )
    on_disk: StrictBool | None = Field(
        None, description='If true, store the index on disk. Default: false.'
    )


class UuidIndexParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: UuidIndexType
    is_tenant: StrictBool | None = Field(
        None, description='If true - used for tenant optimization.'
    )
    on_disk: StrictBool | None = Field(
        None, description='If true, store the index on disk. Default: false.'
    )


class PayloadSelector(RootModel[PayloadSelectorInclude | PayloadSelectorExclude]):
    root: PayloadSelectorInclude | PayloadSelectorExclude = Field(
        ..., description='Specifies how to treat payload selector'
    )


class MatchValue(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    value: StrictStr | StrictInt | StrictBool


class MatchAny(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    any: list[StrictStr] | list[StrictInt]


class GeoBoundingBox(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    top_left: GeoPoint
    bottom_right: GeoPoint


class GeoPolygon(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    exterior: GeoLineString
    interiors: list[GeoLineString] | None = Field(
        None,
        description='Interior lines (if present) bound holes within the surface each GeoLineString must consist of a minimum of 4 points, and the first and last points must be the same.',
    )


class IsEmptyCondition(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    is_empty: PayloadField


class SearchParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    hnsw_ef: StrictInt | None = Field(
        None,
        description='Params relevant to HNSW index Size of the beam in a beam-search. Larger the value - more accurate the result, more time required for search.',
    )
    exact: StrictBool | None = Field(
        False,
        description='Search without approximation. If set to true, search may run long but with exact results.',
    )
    quantization: QuantizationSearchParams | None = Field(
        None, description='Quantization params'
    )
    indexed_only: StrictBool | None = Field(
        False,
        description='If enabled, the engine will only perform search among indexed or small segments. Using this option prevents slow searches in case of delayed index, but does not guarantee that all uploaded vectors will be included in search results',
    )


class UpdateResult(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    operation_id: StrictInt | None = Field(
        None, description='Sequential number of the operation'
    )
    status: UpdateStatus


class LookupLocation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    collection: StrictStr = Field(
        ..., description='Name of the collection used for lookup'
    )
    vector: StrictStr | None = Field(
        None,
        description='Optional name of the vector field within the collection. If not provided, the default vector field will be used.',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = Field(
        None,
        description='Specify in which shards to look for the points, if not specified - look in all shards',
    )


class OrderBy(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    key: StrictStr = Field(..., description='Payload key to order by')
    direction: Direction | None = Field(
        None,
        description='Direction of ordering: `asc` or `desc`. Default is ascending.',
    )
    start_from: StrictInt | StrictFloat | StrictStr | None = Field(
        None,
        description='Which payload value to start scrolling from. Default is the lowest value for `asc` and the highest for `desc`',
    )


class CreateAliasOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    create_alias: CreateAlias


class DeleteAliasOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    delete_alias: DeleteAlias


class RenameAliasOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    rename_alias: RenameAlias


class PointIdsList(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    points: list[StrictInt | StrictStr]
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = None


class RaftInfo(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    term: StrictInt = Field(
        ...,
        description='Raft divides time into terms of arbitrary length, each beginning with an election. If a candidate wins the election, it remains the leader for the rest of the term. The term number increases monotonically. Each server stores the current term number which is also exchanged in every communication.',
    )
    commit: StrictInt = Field(
        ...,
        description='The index of the latest committed (finalized) operation that this peer is aware of.',
    )
    pending_operations: StrictInt = Field(
        ...,
        description='Number of consensus operations pending to be applied on this peer',
    )
    leader: StrictInt | None = Field(None, description='Leader of the current term')
    role: StateRole | None = Field(
        None, description='Role of this peer in the current term'
    )
    is_voter: StrictBool = Field(..., description='Is this peer a voter or a learner')


class LocalShardInfo(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_id: StrictInt = Field(..., description='Local shard id')
    shard_key: StrictStr | StrictInt | None = Field(
        None, description='User-defined sharding key'
    )
    points_count: StrictInt = Field(..., description='Number of points in the shard')
    state: ReplicaState


class ShardTransferInfo(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_id: StrictInt
    to_shard_id: StrictInt | None = Field(
        None,
        description='Target shard ID if different than source shard ID\n\nUsed exclusively with `ReshardStreamRecords` transfer method.',
    )
    from_: StrictInt = Field(..., alias='from', description='Source peer id')
    to: StrictInt = Field(..., description='Destination peer id')
    sync: StrictBool = Field(
        ...,
        description='If `true` transfer is a synchronization of a replicas If `false` transfer is a moving of a shard from one peer to another',
    )
    method: (
        ShardTransferMethod1
        | ShardTransferMethod2
        | ShardTransferMethod3
        | ShardTransferMethod4
        | None
    ) = Field(
        None, description='Methods for transferring a shard from one node to another.'
    )
    comment: StrictStr | None = Field(
        None,
        description='A human-readable report of the transfer progress. Available only on the source peer.',
    )


class ReshardingInfo(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    direction: ReshardingDirection1 | ReshardingDirection2 = Field(
        ..., description='Resharding direction, scale up or down in number of shards'
    )
    shard_id: StrictInt
    peer_id: StrictInt
    shard_key: StrictStr | StrictInt | None = None


class RunningEnvironmentTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    distribution: StrictStr | None = None
    distribution_version: StrictStr | None = None
    is_docker: StrictBool
    cores: StrictInt | None = None
    ram_size: StrictInt | None = None
    disk_size: StrictInt | None = None
    cpu_flags: StrictStr
    cpu_endian: CpuEndian | None = None
    gpu_devices: list[GpuDeviceTelemetry] | None = None


class SparseIndexConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    full_scan_threshold: StrictInt | None = Field(
        None,
        description='We prefer a full scan search upto (excluding) this number of vectors.\n\nNote: this is number of vectors, not KiloBytes.',
    )
    index_type: SparseIndexType1 | SparseIndexType2 | SparseIndexType3 = Field(
        ..., description='Sparse index types'
    )
    datatype: VectorStorageDatatype | None = Field(
        None, description='Datatype used to store weights in the index.'
    )


class VectorIndexSearchesTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    index_name: StrictStr | None = None
    unfiltered_plain: OperationDurationStatistics
    unfiltered_hnsw: OperationDurationStatistics
    unfiltered_sparse: OperationDurationStatistics
    filtered_plain: OperationDurationStatistics
    filtered_small_cardinality: OperationDurationStatistics
    filtered_large_cardinality: OperationDurationStatistics
    filtered_exact: OperationDurationStatistics
    filtered_sparse: OperationDurationStatistics
    unfiltered_exact: OperationDurationStatistics


class TrackerTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    name: StrictStr = Field(..., description='Name of the optimizer')
    segment_ids: list[StrictInt] = Field(..., description='Segment IDs being optimized')
    status: TrackerStatus1 | TrackerStatus2 | TrackerStatus3 = Field(
        ..., description='Represents the current state of the optimizer being tracked'
    )
    start_at: StrictStr = Field(..., description='Start time of the optimizer')
    end_at: StrictStr | None = Field(None, description='End time of the optimizer')


class ShardCleanStatusTelemetry2(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    progress: ShardCleanStatusProgressTelemetry


class ShardCleanStatusTelemetry3(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    failed: ShardCleanStatusFailedTelemetry


class ClusterConfigTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    grpc_timeout_ms: StrictInt
    p2p: P2pConfigTelemetry
    consensus: ConsensusConfigTelemetry


class RequestsTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    rest: WebApiTelemetry
    grpc: GrpcTelemetry


class HardwareTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    collection_data: dict[str, HardwareUsage]


class MoveShardOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    move_shard: MoveShard


class ReplicateShardOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    replicate_shard: ReplicateShard


class AbortTransferOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    abort_transfer: AbortShardTransfer


class DropReplicaOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    drop_replica: Replica


class CreateShardingKeyOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    create_sharding_key: CreateShardingKey


class DropShardingKeyOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    drop_sharding_key: DropShardingKey


class RestartTransferOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    restart_transfer: RestartTransfer


class StartReshardingOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    start_resharding: StartResharding


class AbortReshardingOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    abort_resharding: AbortResharding


class SnapshotRecover(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    location: AnyUrl = Field(
        ...,
        description='Examples: - URL `http://localhost:8080/collections/my_collection/snapshots/my_snapshot` - Local path `file:///qdrant/snapshots/test_collection-2022-08-04-10-49-10.snapshot`',
    )
    priority: SnapshotPriority | None = Field(
        None,
        description='Defines which data should be used as a source of truth if there are other replicas in the cluster. If set to `Snapshot`, the snapshot will be used as a source of truth, and the current state will be overwritten. If set to `Replica`, the current state will be used as a source of truth, and after recovery if will be synchronized with the snapshot.',
    )
    checksum: StrictStr | None = Field(
        None,
        description='Optional SHA256 checksum to verify snapshot integrity before recovery.',
    )
    api_key: StrictStr | None = Field(
        None,
        description='Optional API key used when fetching the snapshot from a remote URL.',
    )


class CollectionsAliasesResponse(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    aliases: list[AliasDescription]


class ReadConsistency(RootModel[StrictInt | ReadConsistencyType]):
    root: StrictInt | ReadConsistencyType = Field(
        ...,
        description='Read consistency parameter\n\nDefines how many replicas should be queried to get the result\n\n* `N` - send N random request and return points, which present on all of them\n\n* `majority` - send N/2+1 random request and return points, which present on all of them\n\n* `quorum` - send requests to all nodes and return points which present on majority of them\n\n* `all` - send requests to all nodes and return points which present on all of them\n\nDefault value is `Factor(1)`',
    )


class WithLookup(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    collection: StrictStr = Field(
        ..., description='Name of the collection to use for points lookup'
    )
    with_payload: (
        StrictBool
        | list[StrictStr]
        | PayloadSelectorInclude
        | PayloadSelectorExclude
        | None
    ) = Field(
        True,
        description='Options for specifying which payload to include (or not)',
        validate_default=True,
    )
    with_vectors: StrictBool | list[StrictStr] | None = Field(
        None,
        description='Options for specifying which vectors to include (or not)',
        validation_alias=AliasChoices('with_vectors', 'with_vector'),
    )


class ShardSnapshotRecover(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    location: AnyUrl | StrictStr
    priority: SnapshotPriority | None = None
    checksum: StrictStr | None = Field(
        None,
        description='Optional SHA256 checksum to verify snapshot integrity before recovery.',
    )
    api_key: StrictStr | None = Field(
        None,
        description='Optional API key used when fetching the snapshot from a remote URL.',
    )


class FusionQuery(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    fusion: Fusion


class RrfQuery(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    rrf: Rrf


class GeoDistance(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    geo_distance: GeoDistanceParams


class SampleQuery(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    sample: Sample


class SearchMatrixPairsResponse(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    pairs: list[SearchMatrixPair] = Field(
        ..., description='List of pairs of points with scores'
    )


class FacetValueHit(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    value: StrictStr | StrictInt | StrictBool
    count: StrictInt


class InferenceUsage(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    models: dict[str, ModelUsage]


class ScalarQuantization(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    scalar: ScalarQuantizationConfig


class ProductQuantization(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    product: ProductQuantizationConfig


class BinaryQuantization(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    binary: BinaryQuantizationConfig


class StrictModeConfigOutput(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    enabled: StrictBool | None = Field(
        None, description='Whether strict mode is enabled for a collection or not.'
    )
    max_query_limit: StrictInt | None = Field(
        None,
        description="Max allowed `limit` parameter for all APIs that don't have their own max limit.",
    )
    max_timeout: StrictInt | None = Field(
        None, description='Max allowed `timeout` parameter.'
    )
    unindexed_filtering_retrieve: StrictBool | None = Field(
        None,
        description='Allow usage of unindexed fields in retrieval based (e.g. search) filters.',
    )
    unindexed_filtering_update: StrictBool | None = Field(
        None,
        description='Allow usage of unindexed fields in filtered updates (e.g. delete by payload).',
    )
    search_max_hnsw_ef: StrictInt | None = Field(
        None, description='Max HNSW value allowed in search parameters.'
    )
    search_allow_exact: StrictBool | None = Field(
        None, description='Whether exact search is allowed or not.'
    )
    search_max_oversampling: StrictFloat | None = Field(
        None, description='Max oversampling value allowed in search.'
    )
    upsert_max_batchsize: StrictInt | None = Field(
        None, description='Max batchsize when upserting'
    )
    max_collection_vector_size_bytes: StrictInt | None = Field(
        None,
        description='Max size of a collections vector storage in bytes, ignoring replicas.',
    )
    read_rate_limit: StrictInt | None = Field(
        None, description='Max number of read operations per minute per replica'
    )
    write_rate_limit: StrictInt | None = Field(
        None, description='Max number of write operations per minute per replica'
    )
    max_collection_payload_size_bytes: StrictInt | None = Field(
        None, description='Max size of a collections payload storage in bytes'
    )
    max_points_count: StrictInt | None = Field(
        None, description='Max number of points estimated in a collection'
    )
    filter_max_conditions: StrictInt | None = Field(
        None, description='Max conditions a filter can have.'
    )
    condition_max_size: StrictInt | None = Field(
        None, description='Max size of a condition, eg. items in `MatchAny`.'
    )
    multivector_config: dict[str, StrictModeMultivectorOutput] | None = Field(
        None, description='Multivector configuration'
    )
    sparse_config: dict[str, StrictModeSparseOutput] | None = Field(
        None, description='Sparse vector configuration'
    )
    max_payload_index_count: StrictInt | None = Field(
        None, description='Max number of payload indexes in a collection'
    )


class StemmingAlgorithm(SnowballParams):
    pass


class PointRequest(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = Field(
        None,
        description='Specify in which shards to look for the points, if not specified - look in all shards',
    )
    ids: list[StrictInt | StrictStr] = Field(
        ..., description='Look for points with ids'
    )
    with_payload: (
        StrictBool
        | list[StrictStr]
        | PayloadSelectorInclude
        | PayloadSelectorExclude
        | None
    ) = Field(
        None,
        description='Select which payload to return with the response. Default is true.',
    )
    with_vector: StrictBool | list[StrictStr] | None = Field(
        None,
        description='Options for specifying which vector to include',
        validation_alias=AliasChoices('with_vector', 'with_vectors'),
    )


class ScoredPoint(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    id: StrictInt | StrictStr = Field(
        ..., description='Type, used for specifying point ID in user interface'
    )
    version: StrictInt = Field(..., description='Point version', examples=[3])
    score: StrictFloat = Field(
        ..., description='Points vector distance to the query vector', examples=[0.75]
    )
    payload: Payload | None = Field(
        None, description='Payload - values assigned to the point'
    )
    vector: (
        list[StrictFloat]
        | list[list[StrictFloat]]
        | dict[str, list[StrictFloat] | SparseVector | list[list[StrictFloat]]]
        | None
    ) = Field(None, description='Vector of the point')
    shard_key: StrictStr | StrictInt | None = Field(None, description='Shard Key')
    order_value: StrictInt | StrictFloat | None = Field(
        None, description='Order-by value'
    )


class OptimizersConfigDiff(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    deleted_threshold: StrictFloat | None = Field(
        None,
        description='The minimal fraction of deleted vectors in a segment, required to perform segment optimization',
    )
    vacuum_min_vector_number: StrictInt | None = Field(
        None,
        description='The minimal number of vectors in a segment, required to perform segment optimization',
    )
    default_segment_number: StrictInt | None = Field(
        None,
        description='Target amount of segments optimizer will try to keep. Real amount of segments may vary depending on multiple parameters: - Amount of stored points - Current write RPS\n\nIt is recommended to select default number of segments as a factor of the number of search threads, so that each segment would be handled evenly by one of the threads If `default_segment_number = 0`, will be automatically selected by the number of available CPUs',
    )
    max_segment_size: StrictInt | None = Field(
        None,
        description='Do not create segments larger this size (in kilobytes). Large segments might require disproportionately long indexation times, therefore it makes sense to limit the size of segments.\n\nIf indexation speed have more priority for your - make this parameter lower. If search speed is more important - make this parameter higher. Note: 1Kb = 1 vector of size 256',
    )
    memmap_threshold: StrictInt | None = Field(
        None,
        deprecated=True,
        description='Maximum size (in kilobytes) of vectors to store in-memory per segment. Segments larger than this threshold will be stored as read-only memmapped file.\n\nMemmap storage is disabled by default, to enable it, set this threshold to a reasonable value.\n\nTo disable memmap storage, set this to `0`.\n\nNote: 1Kb = 1 vector of size 256\n\nDeprecated since Qdrant 1.15.0',
    )
    indexing_threshold: StrictInt | None = Field(
        None,
        description='Maximum size (in kilobytes) of vectors allowed for plain index, exceeding this threshold will enable vector indexing\n\nDefault value is 20,000, based on <https://github.com/google-research/google-research/blob/master/scann/docs/algorithms.md>.\n\nTo disable vector indexing, set to `0`.\n\nNote: 1kB = 1 vector of size 256.',
    )
    flush_interval_sec: StrictInt | None = Field(
        None, description='Minimum interval between forced flushes.'
    )
    max_optimization_threads: MaxOptimizationThreadsSetting | StrictInt | None = Field(
        None,
        description='Max number of threads (jobs) for running optimizations per shard. Note: each optimization job will also use `max_indexing_threads` threads by itself for index building. If "auto" - have no limit and choose dynamically to saturate CPU. If 0 - no optimization threads, optimizations will be disabled.',
    )


class StrictModeConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    enabled: StrictBool | None = Field(
        None, description='Whether strict mode is enabled for a collection or not.'
    )
    max_query_limit: StrictInt | None = Field(
        None,
        description="Max allowed `limit` parameter for all APIs that don't have their own max limit.",
    )
    max_timeout: StrictInt | None = Field(
        None, description='Max allowed `timeout` parameter.'
    )
    unindexed_filtering_retrieve: StrictBool | None = Field(
        None,
        description='Allow usage of unindexed fields in retrieval based (e.g. search) filters.',
    )
    unindexed_filtering_update: StrictBool | None = Field(
        None,
        description='Allow usage of unindexed fields in filtered updates (e.g. delete by payload).',
    )
    search_max_hnsw_ef: StrictInt | None = Field(
        None, description='Max HNSW ef value allowed in search parameters.'
    )
    search_allow_exact: StrictBool | None = Field(
        None, description='Whether exact search is allowed.'
    )
    search_max_oversampling: StrictFloat | None = Field(
        None, description='Max oversampling value allowed in search.'
    )
    upsert_max_batchsize: StrictInt | None = Field(
        None, description='Max batchsize when upserting'
    )
    max_collection_vector_size_bytes: StrictInt | None = Field(
        None,
        description='Max size of a collections vector storage in bytes, ignoring replicas.',
    )
    read_rate_limit: StrictInt | None = Field(
        None, description='Max number of read operations per minute per replica'
    )
    write_rate_limit: StrictInt | None = Field(
        None, description='Max number of write operations per minute per replica'
    )
    max_collection_payload_size_bytes: StrictInt | None = Field(
        None, description='Max size of a collections payload storage in bytes'
    )
    max_points_count: StrictInt | None = Field(
        None, description='Max number of points estimated in a collection'
    )
    filter_max_conditions: StrictInt | None = Field(
        None, description='Max conditions a filter can have.'
    )
    condition_max_size: StrictInt | None = Field(
        None, description='Max size of a condition, eg. items in `MatchAny`.'
    )
    multivector_config: dict[str, StrictModeMultivector] | None = Field(
        None, description='Multivector strict mode configuration'
    )
    sparse_config: dict[str, StrictModeSparse] | None = Field(
        None, description='Sparse vector strict mode configuration'
    )
    max_payload_index_count: StrictInt | None = Field(
        None, description='Max number of payload indexes in a collection'
    )


class Bm25Config(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    k: StrictFloat | None = Field(
        1.2,
        description='Controls term frequency saturation. Higher values mean term frequency has more impact. Default is 1.2',
    )
    b: StrictFloat | None = Field(
        0.75,
        description='Controls document length normalization. Ranges from 0 (no normalization) to 1 (full normalization). Higher values mean longer documents have less impact. Default is 0.75.',
    )
    avg_len: StrictFloat | None = Field(
        256,
        description='Expected average document length in the collection. Default is 256.',
    )
    tokenizer: TokenizerType | None = None
    language: StrictStr | None = Field(
        None,
        description='Defines which language to use for text preprocessing. This parameter is used to construct default stopwords filter and stemmer. To disable language-specific processing, set this to `"language": "none"`. If not specified, English is assumed.',
    )
    lowercase: StrictBool | None = Field(
        None, description='Lowercase the text before tokenization. Default is `true`.'
    )
    stopwords: Language | StopwordsSet | None = Field(
        None,
        description='Configuration of the stopwords filter. Supports list of pre-defined languages and custom stopwords. Default: initialized for specified `language` or English if not specified.',
    )
    stemmer: StemmingAlgorithm | None = Field(
        None,
        description='Configuration of the stemmer. Processes tokens to their root form. Default: initialized Snowball stemmer for specified `language` or English if not specified.',
    )
    min_token_len: StrictInt | None = Field(
        None,
        description='Minimum token length to keep. If token is shorter than this, it will be discarded. Default is `None`, which means no minimum length.',
    )
    max_token_len: StrictInt | None = Field(
        None,
        description='Maximum token length to keep. If token is longer than this, it will be discarded. Default is `None`, which means no maximum length.',
    )


class ClusterStatus2(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    status: Status2
    peer_id: StrictInt = Field(..., description='ID of this peer')
    peers: dict[str, PeerInfo] = Field(
        ..., description='Peers composition of the cluster with main information'
    )
    raft_info: RaftInfo
    consensus_thread_status: (
        ConsensusThreadStatus1 | ConsensusThreadStatus3 | ConsensusThreadStatus5
    ) = Field(..., description='Information about current consensus thread status')
    message_send_failures: dict[str, MessageSendErrors] = Field(
        ...,
        description='Consequent failures of message send operations in consensus by peer address. On the first success to send to that peer - entry is removed from this hashmap.',
    )


class ClusterStatus(RootModel[ClusterStatus1 | ClusterStatus2]):
    root: ClusterStatus1 | ClusterStatus2 = Field(
        ..., description='Information about current cluster status and structure'
    )


class CollectionClusterInfo(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    peer_id: StrictInt = Field(..., description='ID of this peer')
    shard_count: StrictInt = Field(..., description='Total number of shards')
    local_shards: list[LocalShardInfo] = Field(..., description='Local shards')
    remote_shards: list[RemoteShardInfo] = Field(..., description='Remote shards')
    shard_transfers: list[ShardTransferInfo] = Field(..., description='Shard transfers')
    resharding_operations: list[ReshardingInfo] | None = Field(
        None, description='Resharding operations'
    )


class AppBuildTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    name: StrictStr
    version: StrictStr
    features: AppFeaturesTelemetry | None = None
    runtime_features: FeatureFlags | None = None
    hnsw_global_config: HnswGlobalConfig | None = None
    system: RunningEnvironmentTelemetry | None = None
    jwt_rbac: StrictBool | None = None
    hide_jwt_dashboard: StrictBool | None = None
    startup: StrictStr


class SparseVectorDataConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    index: SparseIndexConfig
    storage_type: SparseVectorStorageType1 | SparseVectorStorageType2 | None = None


class OptimizerTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    status: OptimizersStatus1 | OptimizersStatus2 = Field(
        ..., description='Current state of the collection'
    )
    optimizations: OperationDurationStatistics
    log: list[TrackerTelemetry] | None = None


class ClusterTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    enabled: StrictBool
    status: ClusterStatusTelemetry | None = None
    config: ClusterConfigTelemetry | None = None
    peers: dict[str, PeerInfo] | None = None
    peer_metadata: dict[str, PeerMetadata] | None = None
    metadata: dict[str, Any] | None = None


class ClusterOperations(
    RootModel[
        MoveShardOperation
        | ReplicateShardOperation
        | AbortTransferOperation
        | DropReplicaOperation
        | CreateShardingKeyOperation
        | DropShardingKeyOperation
        | RestartTransferOperation
        | StartReshardingOperation
        | AbortReshardingOperation
    ]
):
    root: (
        MoveShardOperation
        | ReplicateShardOperation
        | AbortTransferOperation
        | DropReplicaOperation
        | CreateShardingKeyOperation
        | DropShardingKeyOperation
        | RestartTransferOperation
        | StartReshardingOperation
        | AbortReshardingOperation
    )


class OrderByQuery(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    order_by: StrictStr | OrderBy


class QueryResponse(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    points: list[ScoredPoint]


class FacetResponse(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    hits: list[FacetValueHit]


class Usage(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    hardware: HardwareUsage | None = None
    inference: InferenceUsage | None = None


class TextIndexParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    type: TextIndexType
    tokenizer: TokenizerType | None = None
    min_token_len: StrictInt | None = Field(
        None, description='Minimum characters to be tokenized.'
    )
    max_token_len: StrictInt | None = Field(
        None, description='Maximum characters to be tokenized.'
    )
    lowercase: StrictBool | None = Field(
        None, description='If true, lowercase all tokens. Default: true.'
    )
    phrase_matching: StrictBool | None = Field(
        None, description='If true, support phrase matching. Default: false.'
    )
    stopwords: Language | StopwordsSet | None = Field(
        None,
        description='Ignore this set of tokens. Can select from predefined languages and/or provide a custom set.',
    )
    on_disk: StrictBool | None = Field(
        None, description='If true, store the index on disk. Default: false.'
    )
    stemmer: StemmingAlgorithm | None = Field(
        None, description='Algorithm for stemming. Default: disabled.'
    )


class Record(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    id: StrictInt | StrictStr = Field(
        ..., description='Type, used for specifying point ID in user interface'
    )
    payload: Payload | None = Field(
        None, description='Payload - values assigned to the point'
    )
    vector: (
        list[StrictFloat]
        | list[list[StrictFloat]]
        | dict[str, list[StrictFloat] | SparseVector | list[list[StrictFloat]]]
        | None
    ) = Field(None, description='Vector of the point')
    shard_key: StrictStr | StrictInt | None = Field(None, description='Shard Key')
    order_value: StrictInt | StrictFloat | None = None


class FieldCondition(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    key: StrictStr = Field(..., description='Payload key')
    match: (
        MatchValue
        | MatchText
        | MatchTextAny
        | MatchPhrase
        | MatchAny
        | MatchExcept
        | None
    ) = Field(None, description='Check if point has field with a given value')
    range: Range | DatetimeRange | None = Field(
        None, description='Check if points value lies in a given range'
    )
    geo_bounding_box: GeoBoundingBox | None = Field(
        None, description='Check if points geolocation lies in a given area'
    )
    geo_radius: GeoRadius | None = Field(
        None, description='Check if geo point is within a given radius'
    )
    geo_polygon: GeoPolygon | None = Field(
        None, description='Check if geo point is within a given polygon'
    )
    values_count: ValuesCount | None = Field(
        None, description='Check number of values of the field'
    )
    is_empty: StrictBool | None = Field(
        None,
        description='Check that the field is empty, alternative syntax for `is_empty: "field_name"`',
    )
    is_null: StrictBool | None = Field(
        None,
        description='Check that the field is null, alternative syntax for `is_null: "field_name"`',
    )


class ScrollResult(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    points: list[Record] = Field(
        ...,
        description='List of retrieved points',
        examples=[
            [
                {
                    'id': 40,
                    'payload': {'city': 'London', 'color': 'green'},
                    'vector': [0.875, 0.140625, 0.897599995136261],
                    'shard_key': 'region_1',
                },
                {
                    'id': 41,
                    'payload': {'city': 'Paris', 'color': 'red'},
                    'vector': [0.75, 0.640625, 0.8945000171661377],
                    'shard_key': 'region_1',
                },
            ]
        ],
    )
    next_page_offset: StrictInt | StrictStr | None = Field(
        None, description='Offset which should be used to retrieve a next page result'
    )


class VectorParamsDiff(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    hnsw_config: HnswConfigDiff | None = Field(
        None,
        description='Update params for HNSW index. If empty object - it will be unset.',
    )
    quantization_config: (
        ScalarQuantization | ProductQuantization | BinaryQuantization | Disabled | None
    ) = Field(
        None,
        description='Update params for quantization. If none - it is left unchanged.',
    )
    on_disk: StrictBool | None = Field(
        None,
        description='If true, vectors are served from disk, improving RAM usage at the cost of latency',
    )


class ChangeAliasesOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    actions: list[CreateAliasOperation | DeleteAliasOperation | RenameAliasOperation]


class VectorDataConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    size: StrictInt = Field(..., description='Size/dimensionality of the vectors used')
    distance: Distance
    storage_type: (
        VectorStorageType1
        | VectorStorageType2
        | VectorStorageType3
        | VectorStorageType4
    ) = Field(..., description='Storage types for vectors')
    index: Indexes1 | Indexes2 = Field(..., description='Vector index configuration')
    quantization_config: (
        ScalarQuantization | ProductQuantization | BinaryQuantization | None
    ) = Field(
        None,
        description='Vector specific quantization config that overrides collection config',
    )
    multivector_config: MultiVectorConfig | None = Field(
        None,
        description='Vector specific configuration to enable multiple vectors per point',
    )
    datatype: VectorStorageDatatype | None = Field(
        None,
        description='Vector specific configuration to set specific storage element type',
    )


class PointGroup(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    hits: list[ScoredPoint] = Field(
        ..., description='Scored points that have the same value of the group_by key'
    )
    id: StrictStr | StrictInt = Field(
        ...,
        description='Value of the group_by key, shared across all the hits in the group',
    )
    lookup: Record | None = Field(
        None, description='Record that has been looked up using the group id'
    )


class GroupsResult(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    groups: list[PointGroup]


class VectorParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    size: StrictInt = Field(..., description='Size of a vectors used')
    distance: Distance
    hnsw_config: HnswConfigDiff | None = Field(
        None,
        description='Custom params for HNSW index. If none - values from collection configuration are used.',
    )
    quantization_config: (
        ScalarQuantization | ProductQuantization | BinaryQuantization | None
    ) = Field(
        None,
        description='Custom params for quantization. If none - values from collection configuration are used.',
    )
    on_disk: StrictBool | None = Field(
        None,
        description='If true, vectors are served from disk, improving RAM usage at the cost of latency Default: false',
    )
    datatype: Datatype | None = Field(
        None,
        description='Defines which datatype should be used to represent vectors in the storage. Choosing different datatypes allows to optimize memory usage and performance vs accuracy.\n\n- For `float32` datatype - vectors are stored as single-precision floating point numbers, 4 bytes. - For `float16` datatype - vectors are stored as half-precision floating point numbers, 2 bytes. - For `uint8` datatype - vectors are stored as unsigned 8-bit integers, 1 byte. It expects vector elements to be in range `[0, 255]`.',
    )
    multivector_config: MultiVectorConfig | None = None


class CreateFieldIndex(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    field_name: StrictStr
    field_schema: (
        PayloadSchemaType
        | KeywordIndexParams
        | IntegerIndexParams
        | FloatIndexParams
        | GeoIndexParams
        | TextIndexParams
        | BoolIndexParams
        | DatetimeIndexParams
        | UuidIndexParams
        | None
    ) = None


class Document(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    text: StrictStr = Field(
        ...,
        description='Text of the document. This field will be used as input for the embedding model.',
        examples=['This is a document text'],
    )
    model: StrictStr = Field(
        ...,
        description='Name of the model used to generate the vector. List of available models depends on a provider.',
        examples=['jinaai/jina-embeddings-v2-base-en'],
    )
    options: dict[str, Any] | Bm25Config | None = Field(
        None,
        description='Additional options for the model, will be passed to the inference service as-is. See model cards for available options.',
    )


class SegmentConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    vector_data: dict[str, VectorDataConfig] | None = Field({}, validate_default=True)
    sparse_vector_data: dict[str, SparseVectorDataConfig] | None = None
    payload_storage_type: (
        PayloadStorageType1
        | PayloadStorageType2
        | PayloadStorageType3
        | PayloadStorageType4
    ) = Field(..., description='Type of payload storage')


class NearestQuery(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    nearest: (
        list[StrictFloat]
        | SparseVector
        | list[list[StrictFloat]]
        | StrictInt
        | StrictStr
        | Document
        | Image
        | InferenceObject
    )
    mmr: Mmr | None = Field(
        None,
        description='Perform MMR (Maximal Marginal Relevance) reranking after search, using the same vector in this query to calculate relevance.',
    )


class RecommendInput(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    positive: (
        list[
            list[StrictFloat]
            | SparseVector
            | list[list[StrictFloat]]
            | StrictInt
            | StrictStr
            | Document
            | Image
            | InferenceObject
        ]
        | None
    ) = Field(
        None, description='Look for vectors closest to the vectors from these points'
    )
    negative: (
        list[
            list[StrictFloat]
            | SparseVector
            | list[list[StrictFloat]]
            | StrictInt
            | StrictStr
            | Document
            | Image
            | InferenceObject
        ]
        | None
    ) = Field(
        None, description='Try to avoid vectors like the vector from these points'
    )
    strategy: RecommendStrategy | None = Field(
        None, description='How to use the provided vectors to find the results'
    )


class ContextPair(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    positive: (
        list[StrictFloat]
        | SparseVector
        | list[list[StrictFloat]]
        | StrictInt
        | StrictStr
        | Document
        | Image
        | InferenceObject
    )
    negative: (
        list[StrictFloat]
        | SparseVector
        | list[list[StrictFloat]]
        | StrictInt
        | StrictStr
        | Document
        | Image
        | InferenceObject
    )


class PayloadIndexInfo(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    data_type: PayloadSchemaType
    params: (
        KeywordIndexParams
        | IntegerIndexParams
        | FloatIndexParams
        | GeoIndexParams
        | TextIndexParams
        | BoolIndexParams
        | DatetimeIndexParams
        | UuidIndexParams
        | None
    ) = Field(None, description='Payload type with parameters')
    points: StrictInt = Field(
        ..., description='Number of points indexed with this index'
    )


class CreateCollection(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    vectors: VectorParams | dict[str, VectorParams] | None = Field(
        None,
        description='Vector params separator for single and multiple vector modes Single mode:\n\n{ "size": 128, "distance": "Cosine" }\n\nor multiple mode:\n\n{ "default": { "size": 128, "distance": "Cosine" } }',
    )
    shard_number: StrictInt | None = Field(
        None,
        description='For auto sharding: Number of shards in collection. - Default is 1 for standalone, otherwise equal to the number of nodes - Minimum is 1\n\nFor custom sharding: Number of shards in collection per shard group. - Default is 1, meaning that each shard key will be mapped to a single shard - Minimum is 1',
    )
    sharding_method: ShardingMethod | None = Field(
        None,
        description='Sharding method Default is Auto - points are distributed across all available shards Custom - points are distributed across shards according to shard key',
    )
    replication_factor: StrictInt | None = Field(
        None, description='Number of shards replicas. Default is 1 Minimum is 1'
    )
    write_consistency_factor: StrictInt | None = Field(
        None,
        description='Defines how many replicas should apply the operation for us to consider it successful. Increasing this number will make the collection more resilient to inconsistencies, but will also make it fail if not enough replicas are available. Does not have any performance impact.',
    )
    on_disk_payload: StrictBool | None = Field(
        None,
        description="If true - point's payload will not be stored in memory. It will be read from the disk every time it is requested. This setting saves RAM by (slightly) increasing the response time. Note: those payload values that are involved in filtering and are indexed - remain in RAM.\n\nDefault: true",
    )
    hnsw_config: HnswConfigDiff | None = Field(
        None,
        description='Custom params for HNSW index. If none - values from service configuration file are used.',
    )
    wal_config: WalConfigDiff | None = Field(
        None,
        description='Custom params for WAL. If none - values from service configuration file are used.',
    )
    optimizers_config: OptimizersConfigDiff | None = Field(
        None,
        description='Custom params for Optimizers.  If none - values from service configuration file are used.',
    )
    init_from: InitFrom | None = Field(
        None,
        deprecated=True,
        description='Specify other collection to copy data from.\n\nDeprecated since Qdrant 1.15.0.',
    )
    quantization_config: (
        ScalarQuantization | ProductQuantization | BinaryQuantization | None
    ) = Field(
        None, description='Quantization parameters. If none - quantization is disabled.'
    )
    sparse_vectors: dict[str, SparseVectorParams] | None = Field(
        None, description='Sparse vector data config.'
    )
    strict_mode_config: StrictModeConfig | None = Field(
        None, description='Strict-mode config.'
    )
    metadata: Payload | None = Field(
        None,
        description='Arbitrary JSON metadata for the collection This can be used to store application-specific information such as creation time, migration data, inference model info, etc.',
    )


class UpdateCollection(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    vectors: dict[str, VectorParamsDiff] | None = Field(
        None,
        description='Map of vector data parameters to update for each named vector. To update parameters in a collection having a single unnamed vector, use an empty string as name.',
    )
    optimizers_config: OptimizersConfigDiff | None = Field(
        None,
        description='Custom params for Optimizers.  If none - it is left unchanged. This operation is blocking, it will only proceed once all current optimizations are complete',
    )
    params: CollectionParamsDiff | None = Field(
        None, description='Collection base params. If none - it is left unchanged.'
    )
    hnsw_config: HnswConfigDiff | None = Field(
        None,
        description='HNSW parameters to update for the collection index. If none - it is left unchanged.',
    )
    quantization_config: (
        ScalarQuantization | ProductQuantization | BinaryQuantization | Disabled | None
    ) = Field(
        None,
        description='Quantization parameters to update. If none - it is left unchanged.',
    )
    sparse_vectors: dict[str, SparseVectorParams] | None = Field(
        None,
        description='Map of sparse vector data parameters to update for each sparse vector.',
    )
    strict_mode_config: StrictModeConfig | None = None
    metadata: Payload | None = Field(
        None,
        description='Metadata to update for the collection. If provided, this will merge with existing metadata. To remove metadata, set it to an empty object.',
    )


class SegmentInfo(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    segment_type: SegmentType
    num_vectors: StrictInt
    num_points: StrictInt
    num_indexed_vectors: StrictInt
    num_deleted_vectors: StrictInt
    vectors_size_bytes: StrictInt = Field(
        ...,
        description='An ESTIMATION of effective amount of bytes used for vectors Do NOT rely on this number unless you know what you are doing',
    )
    payloads_size_bytes: StrictInt = Field(
        ...,
        description='An estimation of the effective amount of bytes used for payloads',
    )
    ram_usage_bytes: StrictInt
    disk_usage_bytes: StrictInt
    is_appendable: StrictBool
    index_schema: dict[str, PayloadIndexInfo]
    vector_data: dict[str, VectorDataInfo]


class PointVectors(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    id: StrictInt | StrictStr = Field(
        ..., description='Type, used for specifying point ID in user interface'
    )
    vector: (
        list[StrictFloat]
        | list[list[StrictFloat]]
        | dict[
            str,
            list[StrictFloat]
            | SparseVector
            | list[list[StrictFloat]]
            | Document
            | Image
            | InferenceObject,
        ]
        | Document
        | Image
        | InferenceObject
    ) = Field(
        ...,
        description='Full vector data per point separator with single and multiple vector modes',
        validation_alias=AliasChoices('vector', 'vectors'),
    )


class RecommendQuery(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    recommend: RecommendInput


class DiscoverInput(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    target: (
        list[StrictFloat]
        | SparseVector
        | list[list[StrictFloat]]
        | StrictInt
        | StrictStr
        | Document
        | Image
        | InferenceObject
    )
    context: ContextPair | list[ContextPair] = Field(
        ..., description='Search space will be constrained by these pairs of vectors'
    )


class ContextQuery(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    context: ContextPair | list[ContextPair]


class CollectionParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    vectors: VectorParams | dict[str, VectorParams] | None = Field(
        None,
        description='Vector params separator for single and multiple vector modes Single mode:\n\n{ "size": 128, "distance": "Cosine" }\n\nor multiple mode:\n\n{ "default": { "size": 128, "distance": "Cosine" } }',
    )
    shard_number: StrictInt | None = Field(
        1, description='Number of shards the collection has'
    )
    sharding_method: ShardingMethod | None = Field(
        None,
        description='Sharding method Default is Auto - points are distributed across all available shards Custom - points are distributed across shards according to shard key',
    )
    replication_factor: StrictInt | None = Field(
        1, description='Number of replicas for each shard'
    )
    write_consistency_factor: StrictInt | None = Field(
        1,
        description='Defines how many replicas should apply the operation for us to consider it successful. Increasing this number will make the collection more resilient to inconsistencies, but will also make it fail if not enough replicas are available. Does not have any performance impact.',
    )
    read_fan_out_factor: StrictInt | None = Field(
        None,
        description='Defines how many additional replicas should be processing read request at the same time. Default value is Auto, which means that fan-out will be determined automatically based on the busyness of the local replica. Having more than 0 might be useful to smooth latency spikes of individual nodes.',
    )
    on_disk_payload: StrictBool | None = Field(
        True,
        description="If true - point's payload will not be stored in memory. It will be read from the disk every time it is requested. This setting saves RAM by (slightly) increasing the response time. Note: those payload values that are involved in filtering and are indexed - remain in RAM.\n\nDefault: true",
    )
    sparse_vectors: dict[str, SparseVectorParams] | None = Field(
        None, description='Configuration of the sparse vector storage'
    )


class PointStruct(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    id: StrictInt | StrictStr = Field(
        ..., description='Type, used for specifying point ID in user interface'
    )
    vector: (
        list[StrictFloat]
        | list[list[StrictFloat]]
        | dict[
            str,
            list[StrictFloat]
            | SparseVector
            | list[list[StrictFloat]]
            | Document
            | Image
            | InferenceObject,
        ]
        | Document
        | Image
        | InferenceObject
    ) = Field(
        ...,
        description='Full vector data per point separator with single and multiple vector modes',
        validation_alias=AliasChoices('vector', 'vectors'),
    )
    payload: Payload | None = Field(None, description='Payload values (optional)')


class CollectionConfigTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    params: CollectionParams
    hnsw_config: HnswConfig
    optimizer_config: OptimizersConfig
    wal_config: WalConfig
    quantization_config: (
        ScalarQuantization | ProductQuantization | BinaryQuantization | None
    ) = None
    strict_mode_config: StrictModeConfigOutput | None = None
    uuid: StrictStr | None = None
    metadata: Payload | None = Field(
        None, description='Arbitrary JSON metadata for the collection'
    )


class SegmentTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    info: SegmentInfo
    config: SegmentConfig
    vector_index_searches: list[VectorIndexSearchesTelemetry]
    payload_field_indices: list[PayloadIndexTelemetry]


class CollectionsAggregatedTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    vectors: StrictInt
    optimizers_status: OptimizersStatus1 | OptimizersStatus2 = Field(
        ..., description='Current state of the collection'
    )
    params: CollectionParams


class DiscoverQuery(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    discover: DiscoverInput


class CollectionConfig(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    params: CollectionParams
    hnsw_config: HnswConfig
    optimizer_config: OptimizersConfig
    wal_config: WalConfig | None = None
    quantization_config: (
        ScalarQuantization | ProductQuantization | BinaryQuantization | None
    ) = None
    strict_mode_config: StrictModeConfigOutput | None = None
    metadata: Payload | None = Field(
        None,
        description='Arbitrary JSON metadata for the collection This can be used to store application-specific information such as creation time, migration data, inference model info, etc.',
    )


class Batch(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    ids: list[StrictInt | StrictStr]
    vectors: (
        list[list[StrictFloat]]
        | list[list[list[StrictFloat]]]
        | dict[
            str,
            list[
                list[StrictFloat]
                | SparseVector
                | list[list[StrictFloat]]
                | Document
                | Image
                | InferenceObject
            ],
        ]
        | list[Document]
        | list[Image]
        | list[InferenceObject]
    )
    payloads: list[Payload] | None = None


class LocalShardTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    variant_name: StrictStr | None = None
    status: ShardStatus | None = None
    total_optimized_points: StrictInt = Field(
        ..., description='Total number of optimized points since the last start.'
    )
    vectors_size_bytes: StrictInt | None = Field(
        None,
        description='An ESTIMATION of effective amount of bytes used for vectors Do NOT rely on this number unless you know what you are doing',
    )
    payloads_size_bytes: StrictInt | None = Field(
        None,
        description='An estimation of the effective amount of bytes used for payloads Do NOT rely on this number unless you know what you are doing',
    )
    num_points: StrictInt | None = Field(
        None,
        description='Sum of segment points This is an approximate number Do NOT rely on this number unless you know what you are doing',
    )
    num_vectors: StrictInt | None = Field(
        None,
        description='Sum of number of vectors in all segments This is an approximate number Do NOT rely on this number unless you know what you are doing',
    )
    segments: list[SegmentTelemetry] | None = None
    optimizations: OptimizerTelemetry
    async_scorer: StrictBool | None = None


class CollectionInfo(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    status: CollectionStatus
    optimizer_status: OptimizersStatus1 | OptimizersStatus2 = Field(
        ..., description='Current state of the collection'
    )
    indexed_vectors_count: StrictInt | None = Field(
        None,
        description='Approximate number of indexed vectors in the collection. Indexed vectors in large segments are faster to query, as it is stored in a specialized vector index.',
    )
    points_count: StrictInt | None = Field(
        None,
        description='Approximate number of points (vectors + payloads) in collection. Each point could be accessed by unique id.',
    )
    segments_count: StrictInt = Field(
        ...,
        description='Number of segments in collection. Each segment has independent vector as payload indexes',
    )
    config: CollectionConfig
    payload_schema: dict[str, PayloadIndexInfo] = Field(
        ..., description='Types of stored payload'
    )


class ReplicaSetTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    id: StrictInt
    key: StrictStr | StrictInt | None = None
    local: LocalShardTelemetry | None = None
    remote: list[RemoteShardTelemetry]
    replicate_states: dict[str, ReplicaState]
    partial_snapshot: PartialSnapshotTelemetry | None = None


class CollectionTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    id: StrictStr
    init_time_ms: StrictInt
    config: CollectionConfigTelemetry
    shards: list[ReplicaSetTelemetry] | None = None
    transfers: list[ShardTransferInfo] | None = None
    resharding: list[ReshardingInfo] | None = None
    shard_clean_tasks: (
        dict[
            str,
            ShardCleanStatusTelemetry1
            | ShardCleanStatusTelemetry2
            | ShardCleanStatusTelemetry3,
        ]
        | None
    ) = None


class CollectionsTelemetry(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    number_of_collections: StrictInt
    max_collections: StrictInt | None = None
    collections: list[CollectionTelemetry | CollectionsAggregatedTelemetry] | None = (
        None
    )


class TelemetryData(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    id: StrictStr
    app: AppBuildTelemetry
    collections: CollectionsTelemetry
    cluster: ClusterTelemetry | None = None
    requests: RequestsTelemetry | None = None
    memory: MemoryTelemetry | None = None
    hardware: HardwareTelemetry | None = None


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = Field(
        None,
        description='Specify in which shards to look for the points, if not specified - look in all shards',
    )
    vector: list[StrictFloat] | NamedVector | NamedSparseVector = Field(
        ...,
        description='Vector data separator for named and unnamed modes Unnamed mode:\n\n{ "vector": [1.0, 2.0, 3.0] }\n\nor named mode:\n\n{ "vector": { "vector": [1.0, 2.0, 3.0], "name": "image-embeddings" } }',
    )
    filter: Filter | None = Field(
        None, description='Look only for points which satisfies this conditions'
    )
    params: SearchParams | None = Field(None, description='Additional search params')
    limit: StrictInt = Field(
        ..., description='Max number of result to return', validation_alias=AliasChoices('limit', 'top')
    )
    offset: StrictInt | None = Field(
        None,
        description='Offset of the first result to return. May be used to paginate results. Note: large offset values may cause performance issues.',
    )
    with_payload: (
        StrictBool
        | list[StrictStr]
        | PayloadSelectorInclude
        | PayloadSelectorExclude
        | None
    ) = Field(
        None,
        description='Select which payload to return with the response. Default is false.',
    )
    with_vector: StrictBool | list[StrictStr] | None = Field(
        None,
        description='Options for specifying which vectors to include into response. Default is false.',
        validation_alias=AliasChoices('with_vector', 'with_vectors'),
    )
    score_threshold: StrictFloat | None = Field(
        None,
        description='Define a minimal score threshold for the result. If defined, less similar results will not be returned. Score of the returned result might be higher or smaller than the threshold depending on the Distance function used. E.g. for cosine similarity only higher scores will be returned.',
    )


class Filter(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    should: (
        list[
            FieldCondition
            | IsEmptyCondition
            | IsNullCondition
            | HasIdCondition
            | HasVectorCondition
            | NestedCondition
            | Filter
        ]
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | None
    ) = Field(None, description='At least one of those conditions should match')
    min_should: MinShould | None = Field(
        None, description='At least minimum amount of given conditions should match'
    )
    must: (
        list[
            FieldCondition
            | IsEmptyCondition
            | IsNullCondition
            | HasIdCondition
            | HasVectorCondition
            | NestedCondition
            | Filter
        ]
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | None
    ) = Field(None, description='All conditions must match')
    must_not: (
        list[
            FieldCondition
            | IsEmptyCondition
            | IsNullCondition
            | HasIdCondition
            | HasVectorCondition
            | NestedCondition
            | Filter
        ]
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | None
    ) = Field(None, description='All conditions must NOT match')


class NestedCondition(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    nested: Nested


class Nested(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    key: StrictStr
    filter: Filter


class MinShould(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    conditions: list[
        FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
    ]
    min_count: StrictInt


class RecommendRequest(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = Field(
        None,
        description='Specify in which shards to look for the points, if not specified - look in all shards',
    )
    positive: list[StrictInt | StrictStr | list[StrictFloat] | SparseVector] | None = (
        Field(
            [], description='Look for vectors closest to those', validate_default=True
        )
    )
    negative: list[StrictInt | StrictStr | list[StrictFloat] | SparseVector] | None = (
        Field([], description='Try to avoid vectors like this', validate_default=True)
    )
    strategy: RecommendStrategy | None = Field(
        None,
        description='How to use positive and negative examples to find the results',
    )
    filter: Filter | None = Field(
        None, description='Look only for points which satisfies this conditions'
    )
    params: SearchParams | None = Field(None, description='Additional search params')
    limit: StrictInt = Field(
        ..., description='Max number of result to return', validation_alias=AliasChoices('limit', 'top')
    )
    offset: StrictInt | None = Field(
        None,
        description='Offset of the first result to return. May be used to paginate results. Note: large offset values may cause performance issues.',
    )
    with_payload: (
        StrictBool
        | list[StrictStr]
        | PayloadSelectorInclude
        | PayloadSelectorExclude
        | None
    ) = Field(
        None,
        description='Select which payload to return with the response. Default is false.',
    )
    with_vector: StrictBool | list[StrictStr] | None = Field(
        None,
        description='Options for specifying which vectors to include into response. Default is false.',
        validation_alias=AliasChoices('with_vector', 'with_vectors'),
    )
    score_threshold: StrictFloat | None = Field(
        None,
        description='Define a minimal score threshold for the result. If defined, less similar results will not be returned. Score of the returned result might be higher or smaller than the threshold depending on the Distance function used. E.g. for cosine similarity only higher scores will be returned.',
    )
    using: StrictStr | None = Field(
        None,
        description='Define which vector to use for recommendation, if not specified - try to use default vector',
    )
    lookup_from: LookupLocation | None = Field(
        None,
        description='The location used to lookup vectors. If not specified - use current collection. Note: the other collection should have the same vector size as the current collection',
    )


class ScrollRequest(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = Field(
        None,
        description='Specify in which shards to look for the points, if not specified - look in all shards',
    )
    offset: StrictInt | StrictStr | None = Field(
        None, description='Start ID to read points from.'
    )
    limit: StrictInt | None = Field(None, description='Page size. Default: 10')
    filter: Filter | None = Field(
        None,
        description='Look only for points which satisfies this conditions. If not provided - all points.',
    )
    with_payload: (
        StrictBool
        | list[StrictStr]
        | PayloadSelectorInclude
        | PayloadSelectorExclude
        | None
    ) = Field(
        None,
        description='Select which payload to return with the response. Default is true.',
    )
    with_vector: StrictBool | list[StrictStr] | None = Field(
        None,
        description='Options for specifying which vector to include',
        validation_alias=AliasChoices('with_vector', 'with_vectors'),
    )
    order_by: StrictStr | OrderBy | None = Field(
        None, description='Order the records by a payload field.'
    )


class FilterSelector(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    filter: Filter
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = None


class PointsBatch(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    batch: Batch
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = None
    update_filter: Filter | None = Field(
        None,
        description='If specified, only points that match this filter will be updated, others will be inserted',
    )


class PointsList(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    points: list[PointStruct]
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = None
    update_filter: Filter | None = Field(
        None,
        description='If specified, only points that match this filter will be updated, others will be inserted',
    )


class SetPayload(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    payload: Payload
    points: list[StrictInt | StrictStr] | None = Field(
        None, description='Assigns payload to each point in this list'
    )
    filter: Filter | None = Field(
        None,
        description='Assigns payload to each point that satisfy this filter condition',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = None
    key: StrictStr | None = Field(
        None,
        description='Assigns payload to each point that satisfy this path of property',
    )


class DeletePayload(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    keys: list[StrictStr] = Field(
        ..., description='List of payload keys to remove from payload'
    )
    points: list[StrictInt | StrictStr] | None = Field(
        None, description='Deletes values from each point in this list'
    )
    filter: Filter | None = Field(
        None,
        description='Deletes values from points that satisfy this filter condition',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = None


class CountRequest(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = Field(
        None,
        description='Specify in which shards to look for the points, if not specified - look in all shards',
    )
    filter: Filter | None = Field(
        None, description='Look only for points which satisfies this conditions'
    )
    exact: StrictBool | None = Field(
        True,
        description='If true, count exact number of points. If false, count approximate number of points faster. Approximate count might be unreliable during the indexing process. Default: true',
    )


class SearchRequestBatch(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    searches: list[SearchRequest]


class RecommendRequestBatch(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    searches: list[RecommendRequest]


class UpdateVectors(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    points: list[PointVectors] = Field(..., description='Points with named vectors')
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = None
    update_filter: Filter | None = None


class DeleteVectors(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    points: list[StrictInt | StrictStr] | None = Field(
        None, description='Deletes values from each point in this list'
    )
    filter: Filter | None = Field(
        None,
        description='Deletes values from points that satisfy this filter condition',
    )
    vector: list[StrictStr] = Field(..., description='Vector names')
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = None


class SearchGroupsRequest(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = Field(
        None,
        description='Specify in which shards to look for the points, if not specified - look in all shards',
    )
    vector: list[StrictFloat] | NamedVector | NamedSparseVector = Field(
        ...,
        description='Vector data separator for named and unnamed modes Unnamed mode:\n\n{ "vector": [1.0, 2.0, 3.0] }\n\nor named mode:\n\n{ "vector": { "vector": [1.0, 2.0, 3.0], "name": "image-embeddings" } }',
    )
    filter: Filter | None = Field(
        None, description='Look only for points which satisfies this conditions'
    )
    params: SearchParams | None = Field(None, description='Additional search params')
    with_payload: (
        StrictBool
        | list[StrictStr]
        | PayloadSelectorInclude
        | PayloadSelectorExclude
        | None
    ) = Field(
        None,
        description='Select which payload to return with the response. Default is false.',
    )
    with_vector: StrictBool | list[StrictStr] | None = Field(
        None,
        description='Options for specifying which vectors to include into response. Default is false.',
        validation_alias=AliasChoices('with_vector', 'with_vectors'),
    )
    score_threshold: StrictFloat | None = Field(
        None,
        description='Define a minimal score threshold for the result. If defined, less similar results will not be returned. Score of the returned result might be higher or smaller than the threshold depending on the Distance function used. E.g. for cosine similarity only higher scores will be returned.',
    )
    group_by: StrictStr = Field(
        ...,
        description='Payload field to group by, must be a string or number field. If the field contains more than 1 value, all values will be used for grouping. One point can be in multiple groups.',
    )
    group_size: StrictInt = Field(
        ..., description='Maximum amount of points to return per group'
    )
    limit: StrictInt = Field(..., description='Maximum amount of groups to return')
    with_lookup: StrictStr | WithLookup | None = Field(
        None, description='Look for points in another collection using the group ids'
    )


class RecommendGroupsRequest(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = Field(
        None,
        description='Specify in which shards to look for the points, if not specified - look in all shards',
    )
    positive: list[StrictInt | StrictStr | list[StrictFloat] | SparseVector] | None = (
        Field(
            [], description='Look for vectors closest to those', validate_default=True
        )
    )
    negative: list[StrictInt | StrictStr | list[StrictFloat] | SparseVector] | None = (
        Field([], description='Try to avoid vectors like this', validate_default=True)
    )
    strategy: RecommendStrategy | None = Field(
        None,
        description='How to use positive and negative examples to find the results',
    )
    filter: Filter | None = Field(
        None, description='Look only for points which satisfies this conditions'
    )
    params: SearchParams | None = Field(None, description='Additional search params')
    with_payload: (
        StrictBool
        | list[StrictStr]
        | PayloadSelectorInclude
        | PayloadSelectorExclude
        | None
    ) = Field(
        None,
        description='Select which payload to return with the response. Default is false.',
    )
    with_vector: StrictBool | list[StrictStr] | None = Field(
        None,
        description='Options for specifying which vectors to include into response. Default is false.',
        validation_alias=AliasChoices('with_vector', 'with_vectors'),
    )
    score_threshold: StrictFloat | None = Field(
        None,
        description='Define a minimal score threshold for the result. If defined, less similar results will not be returned. Score of the returned result might be higher or smaller than the threshold depending on the Distance function used. E.g. for cosine similarity only higher scores will be returned.',
    )
    using: StrictStr | None = Field(
        None,
        description='Define which vector to use for recommendation, if not specified - try to use default vector',
    )
    lookup_from: LookupLocation | None = Field(
        None,
        description='The location used to lookup vectors. If not specified - use current collection. Note: the other collection should have the same vector size as the current collection',
    )
    group_by: StrictStr = Field(
        ...,
        description='Payload field to group by, must be a string or number field. If the field contains more than 1 value, all values will be used for grouping. One point can be in multiple groups.',
    )
    group_size: StrictInt = Field(
        ..., description='Maximum amount of points to return per group'
    )
    limit: StrictInt = Field(..., description='Maximum amount of groups to return')
    with_lookup: StrictStr | WithLookup | None = Field(
        None, description='Look for points in another collection using the group ids'
    )


class UpdateOperations(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    operations: list[
        UpsertOperation
        | DeleteOperation
        | SetPayloadOperation
        | OverwritePayloadOperation
        | DeletePayloadOperation
        | ClearPayloadOperation
        | UpdateVectorsOperation
        | DeleteVectorsOperation
    ]


class UpsertOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    upsert: PointsBatch | PointsList


class DeleteOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    delete: PointIdsList | FilterSelector


class SetPayloadOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    set_payload: SetPayload


class OverwritePayloadOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    overwrite_payload: SetPayload


class DeletePayloadOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    delete_payload: DeletePayload


class ClearPayloadOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    clear_payload: PointIdsList | FilterSelector


class UpdateVectorsOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    update_vectors: UpdateVectors


class DeleteVectorsOperation(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    delete_vectors: DeleteVectors


class DiscoverRequest(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = Field(
        None,
        description='Specify in which shards to look for the points, if not specified - look in all shards',
    )
    target: StrictInt | StrictStr | list[StrictFloat] | SparseVector | None = Field(
        None,
        description='Look for vectors closest to this.\n\nWhen using the target (with or without context), the integer part of the score represents the rank with respect to the context, while the decimal part of the score relates to the distance to the target.',
    )
    context: list[ContextExamplePair] | None = Field(
        None,
        description='Pairs of { positive, negative } examples to constrain the search.\n\nWhen using only the context (without a target), a special search - called context search - is performed where pairs of points are used to generate a loss that guides the search towards the zone where most positive examples overlap. This means that the score minimizes the scenario of finding a point closer to a negative than to a positive part of a pair.\n\nSince the score of a context relates to loss, the maximum score a point can get is 0.0, and it becomes normal that many points can have a score of 0.0.\n\nFor discovery search (when including a target), the context part of the score for each pair is calculated +1 if the point is closer to a positive than to a negative part of a pair, and -1 otherwise.',
    )
    filter: Filter | None = Field(
        None, description='Look only for points which satisfies this conditions'
    )
    params: SearchParams | None = Field(None, description='Additional search params')
    limit: StrictInt = Field(..., description='Max number of result to return')
    offset: StrictInt | None = Field(
        None,
        description='Offset of the first result to return. May be used to paginate results. Note: large offset values may cause performance issues.',
    )
    with_payload: (
        StrictBool
        | list[StrictStr]
        | PayloadSelectorInclude
        | PayloadSelectorExclude
        | None
    ) = Field(
        None,
        description='Select which payload to return with the response. Default is false.',
    )
    with_vector: StrictBool | list[StrictStr] | None = Field(
        None,
        description='Options for specifying which vectors to include into response. Default is false.',
        validation_alias=AliasChoices('with_vector', 'with_vectors'),
    )
    using: StrictStr | None = Field(
        None,
        description='Define which vector to use for recommendation, if not specified - try to use default vector',
    )
    lookup_from: LookupLocation | None = Field(
        None,
        description='The location used to lookup vectors. If not specified - use current collection. Note: the other collection should have the same vector size as the current collection',
    )


class DiscoverRequestBatch(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    searches: list[DiscoverRequest]


class QueryRequest(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = None
    prefetch: Prefetch | list[Prefetch] | None = Field(
        None,
        description='Sub-requests to perform first. If present, the query will be performed on the results of the prefetch(es).',
    )
    query: (
        list[StrictFloat]
        | SparseVector
        | list[list[StrictFloat]]
        | StrictInt
        | StrictStr
        | Document
        | Image
        | InferenceObject
        | NearestQuery
        | RecommendQuery
        | DiscoverQuery
        | ContextQuery
        | OrderByQuery
        | FusionQuery
        | RrfQuery
        | FormulaQuery
        | SampleQuery
        | None
    ) = Field(
        None,
        description='Query to perform. If missing without prefetches, returns points ordered by their IDs.',
    )
    using: StrictStr | None = Field(
        None,
        description='Define which vector name to use for querying. If missing, the default vector is used.',
    )
    filter: Filter | None = Field(
        None,
        description='Filter conditions - return only those points that satisfy the specified conditions.',
    )
    params: SearchParams | None = Field(
        None, description='Search params for when there is no prefetch'
    )
    score_threshold: StrictFloat | None = Field(
        None, description='Return points with scores better than this threshold.'
    )
    limit: StrictInt | None = Field(
        None, description='Max number of points to return. Default is 10.'
    )
    offset: StrictInt | None = Field(
        None, description='Offset of the result. Skip this many points. Default is 0'
    )
    with_vector: StrictBool | list[StrictStr] | None = Field(
        None,
        description='Options for specifying which vectors to include into the response. Default is false.',
        validation_alias=AliasChoices('with_vector', 'with_vectors'),
    )
    with_payload: (
        StrictBool
        | list[StrictStr]
        | PayloadSelectorInclude
        | PayloadSelectorExclude
        | None
    ) = Field(
        None,
        description='Options for specifying which payload to include or not. Default is false.',
    )
    lookup_from: LookupLocation | None = Field(
        None,
        description="The location to use for IDs lookup, if not specified - use the current collection and the 'using' vector Note: the other collection vectors should have the same vector size as the 'using' vector in the current collection",
    )


class Prefetch(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    prefetch: Prefetch | list[Prefetch] | None = Field(
        None,
        description='Sub-requests to perform first. If present, the query will be performed on the results of the prefetches.',
    )
    query: (
        list[StrictFloat]
        | SparseVector
        | list[list[StrictFloat]]
        | StrictInt
        | StrictStr
        | Document
        | Image
        | InferenceObject
        | NearestQuery
        | RecommendQuery
        | DiscoverQuery
        | ContextQuery
        | OrderByQuery
        | FusionQuery
        | RrfQuery
        | FormulaQuery
        | SampleQuery
        | None
    ) = Field(
        None,
        description='Query to perform. If missing without prefetches, returns points ordered by their IDs.',
    )
    using: StrictStr | None = Field(
        None,
        description='Define which vector name to use for querying. If missing, the default vector is used.',
    )
    filter: Filter | None = Field(
        None,
        description='Filter conditions - return only those points that satisfy the specified conditions.',
    )
    params: SearchParams | None = Field(
        None, description='Search params for when there is no prefetch'
    )
    score_threshold: StrictFloat | None = Field(
        None, description='Return points with scores better than this threshold.'
    )
    limit: StrictInt | None = Field(
        None, description='Max number of points to return. Default is 10.'
    )
    lookup_from: LookupLocation | None = Field(
        None,
        description="The location to use for IDs lookup, if not specified - use the current collection and the 'using' vector Note: the other collection vectors should have the same vector size as the 'using' vector in the current collection",
    )


class FormulaQuery(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    formula: (
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    )
    defaults: dict[str, Any] | None = {}


class MultExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    mult: list[
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    ]


class SumExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    sum: list[
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    ]


class NegExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    neg: (
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    )


class AbsExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    abs: (
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    )


class DivExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    div: DivParams


class DivParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    left: (
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    )
    right: (
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    )
    by_zero_default: StrictFloat | None = None


class SqrtExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    sqrt: (
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    )


class PowExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    pow: PowParams


class PowParams(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    base: (
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    )
    exponent: (
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    )


class ExpExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    exp: (
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    )


class Log10Expression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    log10: (
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    )


class LnExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    ln: (
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    )


class LinDecayExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    lin_decay: DecayParamsExpression


class DecayParamsExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    x: (
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
    )
    target: (
        StrictFloat
        | StrictStr
        | FieldCondition
        | IsEmptyCondition
        | IsNullCondition
        | HasIdCondition
        | HasVectorCondition
        | NestedCondition
        | Filter
        | GeoDistance
        | DatetimeExpression
        | DatetimeKeyExpression
        | MultExpression
        | SumExpression
        | NegExpression
        | AbsExpression
        | DivExpression
        | SqrtExpression
        | PowExpression
        | ExpExpression
        | Log10Expression
        | LnExpression
        | LinDecayExpression
        | ExpDecayExpression
        | GaussDecayExpression
        | None
    ) = Field(
        None, description='The target value to start decaying from. Defaults to 0.'
    )
    scale: StrictFloat | None = Field(
        None,
        description='The scale factor of the decay, in terms of `x`. Defaults to 1.0. Must be a non-zero positive number.',
    )
    midpoint: StrictFloat | None = Field(
        None,
        description='The midpoint of the decay. Should be between 0 and 1.Defaults to 0.5. Output will be this value when `|x - target| == scale`.',
    )


class ExpDecayExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    exp_decay: DecayParamsExpression


class GaussDecayExpression(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    gauss_decay: DecayParamsExpression


class QueryRequestBatch(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    searches: list[QueryRequest]


class QueryGroupsRequest(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = None
    prefetch: Prefetch | list[Prefetch] | None = Field(
        None,
        description='Sub-requests to perform first. If present, the query will be performed on the results of the prefetch(es).',
    )
    query: (
        list[StrictFloat]
        | SparseVector
        | list[list[StrictFloat]]
        | StrictInt
        | StrictStr
        | Document
        | Image
        | InferenceObject
        | NearestQuery
        | RecommendQuery
        | DiscoverQuery
        | ContextQuery
        | OrderByQuery
        | FusionQuery
        | RrfQuery
        | FormulaQuery
        | SampleQuery
        | None
    ) = Field(
        None,
        description='Query to perform. If missing without prefetches, returns points ordered by their IDs.',
    )
    using: StrictStr | None = Field(
        None,
        description='Define which vector name to use for querying. If missing, the default vector is used.',
    )
    filter: Filter | None = Field(
        None,
        description='Filter conditions - return only those points that satisfy the specified conditions.',
    )
    params: SearchParams | None = Field(
        None, description='Search params for when there is no prefetch'
    )
    score_threshold: StrictFloat | None = Field(
        None, description='Return points with scores better than this threshold.'
    )
    with_vector: StrictBool | list[StrictStr] | None = Field(
        None,
        description='Options for specifying which vectors to include into the response. Default is false.',
    )
    with_payload: (
        StrictBool
        | list[StrictStr]
        | PayloadSelectorInclude
        | PayloadSelectorExclude
        | None
    ) = Field(
        None,
        description='Options for specifying which payload to include or not. Default is false.',
    )
    lookup_from: LookupLocation | None = Field(
        None,
        description="The location to use for IDs lookup, if not specified - use the current collection and the 'using' vector Note: the other collection vectors should have the same vector size as the 'using' vector in the current collection",
    )
    group_by: StrictStr = Field(
        ...,
        description='Payload field to group by, must be a string or number field. If the field contains more than 1 value, all values will be used for grouping. One point can be in multiple groups.',
    )
    group_size: StrictInt | None = Field(
        None, description='Maximum amount of points to return per group. Default is 3.'
    )
    limit: StrictInt | None = Field(
        None, description='Maximum amount of groups to return. Default is 10.'
    )
    with_lookup: StrictStr | WithLookup | None = Field(
        None, description='Look for points in another collection using the group ids'
    )


class SearchMatrixRequest(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = Field(
        None,
        description='Specify in which shards to look for the points, if not specified - look in all shards',
    )
    filter: Filter | None = Field(
        None, description='Look only for points which satisfies this conditions'
    )
    sample: StrictInt | None = Field(
        None, description='How many points to select and search within. Default is 10.'
    )
    limit: StrictInt | None = Field(
        None, description='How many neighbours per sample to find. Default is 3.'
    )
    using: StrictStr | None = Field(
        None,
        description='Define which vector name to use for querying. If missing, the default vector is used.',
    )


class FacetRequest(BaseModel):
    model_config = ConfigDict(
        extra='ignore',
    )
    shard_key: StrictStr | StrictInt | list[StrictStr | StrictInt] | None = None
    key: StrictStr = Field(..., description='Payload key to use for faceting.')
    limit: StrictInt | None = Field(
        None, description='Max number of hits to return. Default is 10.'
    )
    filter: Filter | None = Field(
        None,
        description='Filter conditions - only consider points that satisfy these conditions.',
    )
    exact: StrictBool | None = Field(
        None,
        description='Whether to do a more expensive exact count for each of the values in the facet. Default is false.',
    )


class Query(
    RootModel[
        NearestQuery
        | RecommendQuery
        | DiscoverQuery
        | ContextQuery
        | OrderByQuery
        | FusionQuery
        | RrfQuery
        | FormulaQuery
        | SampleQuery
    ]
):
    root: (
        NearestQuery
        | RecommendQuery
        | DiscoverQuery
        | ContextQuery
        | OrderByQuery
        | FusionQuery
        | RrfQuery
        | FormulaQuery
        | SampleQuery
    )


SearchRequest.model_rebuild()
Filter.model_rebuild()
NestedCondition.model_rebuild()
UpdateOperations.model_rebuild()
QueryRequest.model_rebuild()
Prefetch.model_rebuild()
FormulaQuery.model_rebuild()
MultExpression.model_rebuild()
SumExpression.model_rebuild()
NegExpression.model_rebuild()
AbsExpression.model_rebuild()
DivExpression.model_rebuild()
DivParams.model_rebuild()
SqrtExpression.model_rebuild()
PowExpression.model_rebuild()
PowParams.model_rebuild()
ExpExpression.model_rebuild()
Log10Expression.model_rebuild()
LnExpression.model_rebuild()
LinDecayExpression.model_rebuild()
DecayParamsExpression.model_rebuild()

# Union schemas of the spec, inlined above by --collapse-root-models.
QuantizationConfig = ScalarQuantization | ProductQuantization | BinaryQuantization
PayloadSchemaParams = KeywordIndexParams | IntegerIndexParams | FloatIndexParams | GeoIndexParams | TextIndexParams | BoolIndexParams | DatetimeIndexParams | UuidIndexParams
StopwordsInterface = Language | StopwordsSet
Condition = FieldCondition | IsEmptyCondition | IsNullCondition | HasIdCondition | HasVectorCondition | NestedCondition | Filter
Match = MatchValue | MatchText | MatchTextAny | MatchPhrase | MatchAny | MatchExcept
RangeInterface = Range | DatetimeRange
QuantizationConfigDiff = ScalarQuantization | ProductQuantization | BinaryQuantization | Disabled
AliasOperations = CreateAliasOperation | DeleteAliasOperation | RenameAliasOperation
PayloadFieldSchema = PayloadSchemaType | KeywordIndexParams | IntegerIndexParams | FloatIndexParams | GeoIndexParams | TextIndexParams | BoolIndexParams | DatetimeIndexParams | UuidIndexParams
PointsSelector = PointIdsList | FilterSelector
PointInsertOperations = PointsBatch | PointsList
CollectionTelemetryEnum = CollectionTelemetry | CollectionsAggregatedTelemetry
UpdateOperation = UpsertOperation | DeleteOperation | SetPayloadOperation | OverwritePayloadOperation | DeletePayloadOperation | ClearPayloadOperation | UpdateVectorsOperation | DeleteVectorsOperation
